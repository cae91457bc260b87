//! Benchmark: 1,000 jobs to 3 loopback relays as one `jobctl rerun --batch`
//! against 1,000 separate `jobctl rerun` processes (release binary, each
//! journaling before it publishes). Reports both wall times, the speed-up
//! and the batch's peak RSS.
//!
//!     cargo build --release && cargo run --release --example bench_batch -- [JOBS]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use nostr_relay_builder::prelude::*;

fn main() {
    let jobs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let bin = std::env::var_os("JOBCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/jobctl"));
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let relays: Vec<LocalRelay> = (0..3)
        .map(|_| {
            rt.block_on(async {
                let r = LocalRelay::new(RelayBuilder::default().rate_limit(RateLimit {
                    max_reqs: 500,
                    notes_per_minute: 100_000_000,
                }));
                r.run().await.expect("relay");
                r
            })
        })
        .collect();
    let urls: Vec<String> = relays
        .iter()
        .map(|r| rt.block_on(r.url()).to_string())
        .collect();
    let keys = Keys::generate();
    let worker = Keys::generate().public_key().to_hex();
    let cmd = |home: &std::path::Path| {
        let mut c = Command::new(&bin);
        c.env_clear()
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("JOBCTL_SECRET_KEY", keys.secret_key().to_secret_hex())
            .env("JOBCTL_RELAYS", urls.join(","))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };

    // One batch.
    let home = tempfile::tempdir().expect("tempdir");
    let file = home.path().join("batch.ndjson");
    let lines: Vec<String> = (0..jobs)
        .map(|i| {
            serde_json::json!({"worker": worker, "args": ["-j", format!("batch-{i}")], "unpaid": true})
                .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write batch");
    let t = Instant::now();
    let st = cmd(home.path())
        .args(["rerun", "--quiet", "--batch"])
        .arg(&file)
        .status()
        .expect("batch");
    let batch = t.elapsed();
    assert!(st.success());
    let rss_mb = peak_child_rss_kb() as f64 / 1024.0;

    // The same jobs, one process each.
    let home2 = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    for i in 0..jobs {
        let st = cmd(home2.path())
            .args([
                "rerun", "--quiet", "--unpaid", "--worker", &worker, "--", "-j",
            ])
            .arg(format!("single-{i}"))
            .status()
            .expect("rerun");
        assert!(st.success());
    }
    let singles = t.elapsed();
    println!(
        "{jobs} jobs -> 3 loopback relays: batch {:.2} s, separate processes {:.2} s, speed-up {:.1}x; batch peak RSS {rss_mb:.1} MB",
        batch.as_secs_f64(),
        singles.as_secs_f64(),
        singles.as_secs_f64() / batch.as_secs_f64()
    );
}

/// Largest resident set of any child so far (Linux reports KiB); the batch
/// runs first, and the single runs are smaller.
fn peak_child_rss_kb() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss
}
