//! Benchmark: one dispatch at the floor. Runs, side by side and
//! interleaved, against the same 3 loopback relays (nostr-relay-builder
//! LocalRelay) and one in-process cdk mint:
//!
//! - `raw`: examples/raw_publisher (sign one 5100, send it to each relay,
//!   wait for each OK, nothing else);
//! - `rerun --no-check --token T` (ad lookup, journal, publish);
//! - `rerun --token T` (the same plus the NUT-07 spent-check at the mint);
//! - one mint round trip (GET /v1/keysets) for reference;
//! - peak RSS of one dispatch and of a 1,000-job `rerun --batch`.
//!
//! Run it as:
//!
//! ```sh
//! cargo build --release --locked
//! cargo build --release --locked --example raw_publisher
//! cargo run --release --locked --example bench_dispatch -- [RUNS]
//! ```
//!
//! Set JOBCTL_BIN / RAW_BIN to measure other binaries.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mint::TestMint;
use common::{ScriptedWorker, TestEnv, TestRelay};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var_os("JOBCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/jobctl"));
    let raw = std::env::var_os("RAW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/examples/raw_publisher"));
    assert!(bin.exists(), "cargo build --release --locked first");
    assert!(
        raw.exists(),
        "cargo build --release --locked --example raw_publisher first"
    );

    let mint = TestMint::start();
    let relays = [TestRelay::start(), TestRelay::start(), TestRelay::start()];
    let urls: Vec<String> = relays.iter().map(|r| r.url.clone()).collect();
    let worker = ScriptedWorker::new();
    worker.send(
        &relays.iter().collect::<Vec<_>>(),
        &[worker.ad("bench", Some(&mint.url), common::now())],
    );
    let env = TestEnv::new();
    let jobctl = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.env_clear()
            .env("HOME", env.home())
            .env("XDG_CONFIG_HOME", env.home().join("config"))
            .env("XDG_DATA_HOME", env.home().join("data"))
            .env("JOBCTL_RELAYS", urls.join(","))
            .args(args);
        c
    };
    // One token, checked (never spent) by every run.
    let ok = jobctl(&["wallet", "mint", "100", "--mint", &mint.url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("wallet mint");
    assert!(ok.success(), "wallet mint failed");
    let out = jobctl(&["wallet", "send", "10"])
        .stderr(Stdio::null())
        .output()
        .expect("wallet send");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("cashu"), "no token from wallet send");

    let secret = env.keys.secret_key().to_secret_hex();
    let mut n = 0usize;
    assert!(
        std::path::Path::new("/usr/bin/time").exists(),
        "needs GNU time (/usr/bin/time) for peak RSS"
    );
    let mut make = |what: &str| -> Command {
        n += 1;
        let tag = format!("bench-{n}");
        let mut c = match what {
            "raw" => {
                let mut c = Command::new(&raw);
                c.env_clear()
                    .env("JOBCTL_SECRET_KEY", &secret)
                    .arg(worker.hex())
                    .args(&urls);
                c
            }
            "no-check" => jobctl(&[
                "rerun",
                "-q",
                "--no-check",
                "--token",
                &token,
                "--worker",
                &worker.hex(),
                "--",
                &tag,
            ]),
            _ => jobctl(&[
                "rerun",
                "-q",
                "--token",
                &token,
                "--worker",
                &worker.hex(),
                "--",
                &tag,
            ]),
        };
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let kinds = ["raw", "no-check", "check"];
    for _ in 0..5 {
        for k in kinds {
            timed(&mut make(k));
        }
    }
    if std::env::var_os("BENCH_TRACE").is_some() {
        // One traced dispatch, to see where the time goes.
        let c = jobctl(&[
            "rerun",
            "--no-check",
            "--token",
            &token,
            "--worker",
            &worker.hex(),
            "--",
            "trace",
        ]);
        let mut t = Command::new("strace");
        t.env_clear()
            .args(["-f", "-tt", "-o", "/tmp/bench_dispatch.strace"])
            .args([
                "-e",
                "trace=execve,connect,fsync,fdatasync,sendto,write,exit_group",
            ])
            .arg(c.get_program())
            .args(c.get_args());
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                t.env(k, v);
            }
        }
        let _ = t.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    let mut rss = [0i64; 3];
    let mut mint_rt = Vec::new();
    for _ in 0..runs {
        for (i, k) in kinds.iter().enumerate() {
            times[i].push(timed(&mut make(k)));
        }
        mint_rt.push(mint_round_trip(&mint.url));
    }
    // Peak RSS of each, measured apart (a forked child inherits the
    // harness's high-water mark until exec; GNU time forks from a small
    // process).
    for (i, k) in kinds.iter().enumerate() {
        for _ in 0..3 {
            rss[i] = rss[i].max(peak_rss(&make(k), None));
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let p90 = |v: &Vec<Duration>| v[v.len() * 9 / 10];
    let mint_med = median(&mut mint_rt);
    println!(
        "{runs} runs each, 3 loopback relays, mint on loopback (round trip median {:.2} ms)",
        ms(mint_med)
    );
    println!("| what | median ms | p90 ms | peak RSS MB |");
    println!("|---|---|---|---|");
    let names = [
        "raw publisher",
        "jobctl rerun --no-check --token T",
        "jobctl rerun --token T (spent-check)",
    ];
    let mut med = [Duration::ZERO; 3];
    for i in 0..3 {
        med[i] = median(&mut times[i]);
        println!(
            "| {} | {:.2} | {:.2} | {:.1} |",
            names[i],
            ms(med[i]),
            ms(p90(&times[i])),
            rss[i] as f64 / 1024.0
        );
    }

    // A 1,000-job batch: peak RSS and time.
    let lines: String = (0..1000)
        .map(|i| {
            format!(
                "{{\"worker\":\"{}\",\"unpaid\":true,\"args\":[\"b{i}\"]}}\n",
                worker.hex()
            )
        })
        .collect();
    let mut c = jobctl(&["rerun", "-q", "--batch", "-", "--concurrency", "64"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let batch_rss = peak_rss(&c, Some(&lines));
    let batch_t = t.elapsed();
    println!(
        "| jobctl rerun --batch (1,000 jobs) | {:.0} (total) | | {:.1} |",
        ms(batch_t),
        batch_rss as f64 / 1024.0
    );
    println!();
    println!(
        "targets: no-check <= 1.5 x raw: {:.2} <= {:.2} {}; check <= raw + mint RTT + 2 ms: {:.2} <= {:.2} {}; one dispatch <= 20 MB: {}; batch <= 50 MB: {}",
        ms(med[1]),
        1.5 * ms(med[0]),
        verdict(ms(med[1]) <= 1.5 * ms(med[0])),
        ms(med[2]),
        ms(med[0]) + ms(mint_med) + 2.0,
        verdict(ms(med[2]) <= ms(med[0]) + ms(mint_med) + 2.0),
        verdict(rss[1].max(rss[2]) <= 20 * 1024),
        verdict(batch_rss <= 50 * 1024),
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// Run to completion; wall time.
fn timed(c: &mut Command) -> Duration {
    let t = Instant::now();
    let st = c.status().expect("spawn");
    let dt = t.elapsed();
    assert!(st.success(), "{c:?} failed");
    dt
}

/// Peak RSS (KiB) of one run of `c`, through GNU time.
fn peak_rss(c: &Command, stdin: Option<&str>) -> i64 {
    let out = tempfile::NamedTempFile::new().expect("temp");
    let mut t = Command::new("/usr/bin/time");
    t.env_clear()
        .args(["-f", "%M", "-o"])
        .arg(out.path())
        .arg(c.get_program())
        .args(c.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    t.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = t.spawn().expect("/usr/bin/time");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    let st = child.wait().expect("wait");
    assert!(st.success(), "{c:?} failed");
    std::fs::read_to_string(out.path())
        .ok()
        .and_then(|s| s.trim().lines().last().and_then(|l| l.trim().parse().ok()))
        .expect("GNU time output")
}

/// One HTTP GET of the mint's keysets over a fresh connection.
fn mint_round_trip(mint: &str) -> Duration {
    let host = mint.trim_start_matches("http://").trim_end_matches('/');
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(host).expect("mint");
    s.set_nodelay(true).ok();
    s.write_all(
        format!("GET /v1/keysets HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    t.elapsed()
}
