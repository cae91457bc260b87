//! Benchmark: `jobctl rerun --amount` end to end (wallet makes the token,
//! journal, publish to 3 loopback relays) against an in-process cdk mint
//! with the fake Lightning backend.
//!
//!     cargo build --release && cargo run --release --example bench_pay -- [RUNS]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::mint::TestMint;
use common::{ScriptedWorker, TestEnv, TestRelay};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let bin = std::env::var_os("JOBCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/jobctl"));
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release"
    );
    let mint = TestMint::start();
    let relays = [TestRelay::start(), TestRelay::start(), TestRelay::start()];
    let worker = ScriptedWorker::new();
    worker.send(
        &relays.iter().collect::<Vec<_>>(),
        &[worker.ad("bench", Some(&mint.url), common::now())],
    );
    let env = TestEnv::new();
    let cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(&bin);
        c.env_clear()
            .env("HOME", env.home())
            .env("XDG_CONFIG_HOME", env.home().join("config"))
            .env("XDG_DATA_HOME", env.home().join("data"))
            .env(
                "JOBCTL_RELAYS",
                relays
                    .iter()
                    .map(|r| r.url.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let total = (runs as u64 + 5) * 10;
    assert!(
        cmd(&["wallet", "mint", &total.to_string(), "--mint", &mint.url])
            .status()
            .unwrap()
            .success()
    );
    let mut times: Vec<Duration> = Vec::new();
    for i in 0..runs + 5 {
        let t = Instant::now();
        let st = cmd(&[
            "rerun",
            "-q",
            "--amount",
            "10",
            "--worker",
            &worker.hex(),
            "--",
            &format!("pay-{i}"),
        ])
        .status()
        .unwrap();
        let dt = t.elapsed();
        assert!(st.success());
        if i >= 5 {
            times.push(dt);
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "rerun --amount 10 (wallet token + journal + 3 relays, mint on loopback), {runs} runs: median {:.1} ms, p90 {:.1} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10])
    );
}
