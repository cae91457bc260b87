//! Benchmark: the release `jobctl rerun` binary publishing one job to 3
//! loopback relays, end to end (process start to exit), many times.
//! Reports median / p90 / p99 wall time and the peak RSS of the child.
//!
//!     cargo build --release && cargo run --release --example bench_rerun -- [RUNS]
//!
//! Set JOBCTL_BIN to measure another binary.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nostr_relay_builder::prelude::*;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let bin = std::env::var_os("JOBCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/jobctl"));
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release ({})",
        bin.display()
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let relays: Vec<LocalRelay> = (0..3)
        .map(|_| {
            rt.block_on(async {
                let r = LocalRelay::new(RelayBuilder::default());
                r.run().await.expect("relay");
                r
            })
        })
        .collect();
    let urls: Vec<String> = relays
        .iter()
        .map(|r| rt.block_on(r.url()).to_string())
        .collect();

    let home = tempfile::tempdir().expect("tempdir");
    let keys = Keys::generate();
    let worker = Keys::generate().public_key().to_hex();
    let run = || {
        let mut c = Command::new(&bin);
        c.env_clear()
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env("JOBCTL_SECRET_KEY", keys.secret_key().to_secret_hex())
            .args(["rerun", "--unpaid", "--quiet", "--worker", &worker]);
        for u in &urls {
            c.args(["--relay", u]);
        }
        let t = Instant::now();
        let st = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run jobctl");
        assert!(st.success(), "jobctl failed: {st}");
        t.elapsed()
    };
    for _ in 0..10 {
        run();
    }
    let mut times: Vec<Duration> = (0..runs).map(|_| run()).collect();
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rss_kb = peak_child_rss_kb();
    println!(
        "rerun -> 3 loopback relays, {runs} runs: median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, min {:.2} ms; peak RSS {:.1} MB",
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(times[0]),
        rss_kb as f64 / 1024.0
    );
}

/// Largest resident set of any child so far (Linux reports KiB).
fn peak_child_rss_kb() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss
}
