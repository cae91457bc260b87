//! Benchmarks for following jobs, against in-process loopback relays and
//! the release binary:
//!
//! 1. latency from a worker publishing its result to `jobctl watch`
//!    exiting (the watch is already subscribed);
//! 2. `jobctl list` over 1,000 jobs that all have a status or result.
//!
//!     cargo build --release && cargo run --release --example bench_follow -- [WATCH_RUNS]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nostr_relay_builder::prelude::*;

fn tag(name: &str, v: &[&str]) -> Tag {
    Tag::custom(
        TagKind::Custom(name.to_string().into()),
        v.iter().map(|s| s.to_string()),
    )
}

fn request(user: &Keys, worker: &str, i: u64, at: u64) -> Event {
    EventBuilder::new(Kind::Custom(5100), "")
        .tags([
            tag("p", &[worker]),
            tag("worker", &[worker]),
            tag("cmd", &["act"]),
            tag("args", &["-j", &i.to_string()]),
        ])
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(user)
        .expect("sign")
}

fn result(worker: &Keys, job: &str, user: &str, code: i64) -> Event {
    EventBuilder::new(Kind::Custom(5101), "")
        .tags([
            tag("e", &[job]),
            tag("p", &[user]),
            tag("exit_code", &[&code.to_string()]),
            tag("duration", &["1.5"]),
        ])
        .sign_with_keys(worker)
        .expect("sign")
}

fn status(worker: &Keys, job: &str, user: &str, s: &str) -> Event {
    EventBuilder::new(Kind::Custom(30100), "")
        .tags([
            tag("d", &[job]),
            tag("e", &[job]),
            tag("p", &[user]),
            tag("status", &[s]),
        ])
        .sign_with_keys(worker)
        .expect("sign")
}

fn median(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[(v.len() as f64 * 0.9) as usize]))
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let settle_ms: u64 = std::env::var("SETTLE_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let bin = std::env::var_os("JOBCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/jobctl"));
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let relay = rt.block_on(async {
        let r = LocalRelay::new(RelayBuilder::default().rate_limit(RateLimit {
            max_reqs: 500,
            notes_per_minute: 10_000_000,
        }));
        r.run().await.expect("relay");
        r
    });
    let url = rt.block_on(relay.url()).to_string();
    let (user, worker) = (Keys::generate(), Keys::generate());
    let (uh, wh) = (user.public_key().to_hex(), worker.public_key().to_hex());
    let client = rt.block_on(async {
        let c = nostr_sdk::Client::new(worker.clone());
        c.add_relay(url.as_str()).await.expect("add");
        c.connect().await;
        c.wait_for_connection(Duration::from_secs(5)).await;
        c
    });
    let send = |e: &Event| {
        rt.block_on(client.send_event(e)).expect("send");
    };
    let home = tempfile::tempdir().expect("tempdir");
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.env_clear()
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env("JOBCTL_SECRET_KEY", user.secret_key().to_secret_hex())
            .env("JOBCTL_RELAYS", &url)
            .args(args);
        c
    };

    // 1. result -> watch exit
    let now = Timestamp::now().as_secs();
    let mut lat = Vec::with_capacity(runs);
    for i in 0..runs as u64 + 5 {
        let req = request(&user, &wh, 1_000_000 + i, now);
        send(&req);
        let id = req.id.to_hex();
        let mut child = cmd(&["-v", "watch", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        while err.read_line(&mut line).expect("read") > 0 && !line.contains("watching") {
            line.clear();
        }
        // A worker answers seconds later in real life; let the subscription
        // settle so the measurement is the steady state (right after EOSE,
        // Nagle on the relay's socket waits out the watcher's delayed ACK).
        std::thread::sleep(Duration::from_millis(settle_ms));
        let t0 = Instant::now();
        send(&result(&worker, &id, &uh, 0));
        let st = child.wait().expect("wait");
        let dt = t0.elapsed();
        assert!(st.success());
        if i >= 5 {
            lat.push(dt);
        }
    }
    let (med, p90) = median(lat);
    println!(
        "watch: result published -> jobctl exits, {runs} runs: median {med:.2} ms, p90 {p90:.2} ms"
    );

    // 2. list over 1,000 jobs with statuses/results
    let base = now - 5000;
    for i in 0..1000u64 {
        let req = request(&user, &wh, i, base + i);
        send(&req);
        let id = req.id.to_hex();
        if i % 2 == 0 {
            send(&result(&worker, &id, &uh, (i % 3) as i64));
        } else {
            send(&status(&worker, &id, &uh, "running"));
        }
    }
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let out = cmd(&[
            "list",
            "--json",
            "--limit",
            "1000",
            "--since",
            &base.to_string(),
        ])
        .output()
        .expect("list");
        times.push(t.elapsed());
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v.as_array().map(|a| a.len()), Some(1000));
    }
    let (med, p90) = median(times);
    println!(
        "list: 1,000 jobs with statuses/results, 10 runs: median {med:.1} ms, p90 {p90:.1} ms"
    );
}
