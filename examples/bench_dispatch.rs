//! Benchmark: one dispatch at the floor. Runs, side by side and
//! interleaved, against the same 3 loopback relays and one loopback mint:
//!
//! - `raw`: examples/raw_publisher (sign one 5100, send it to each relay,
//!   wait for each OK, nothing else);
//! - `rerun --no-check --token T` (ad lookup, journal, publish);
//! - `rerun --token T` (the same plus the NUT-07 spent-check at the mint);
//! - one mint round trip (a NUT-07 `checkstate` of the token, the request
//!   a spent-check makes) for reference;
//! - peak RSS of one dispatch and of a 1,000-job `rerun --batch`
//!   (`BENCH_NO_BATCH=1` leaves the batch out, e.g. to profile).
//!
//! Run it as:
//!
//! ```sh
//! cargo build --release --locked
//! cargo build --release --locked --example raw_publisher
//! cargo run --release --locked --example bench_dispatch -- [RUNS]
//! ```
//!
//! Set JOBCTL_BIN / RAW_BIN to measure other binaries, and
//! `BENCH_BASELINE=/path/to/another/jobctl` to add that build's two
//! dispatches, interleaved with the others (an A/B comparison that the
//! machine's drift from one invocation to the next does not blur). The backends
//! (examples/bench_dispatch/backends.rs):
//! - `BENCH_RELAY=local` (default) or `nostr-rs-relay` (3 processes; the
//!   binary from `$NOSTR_RS_RELAY` or PATH, `cargo install nostr-rs-relay`);
//! - `BENCH_MINT=cdk` (default, in-process) or `nutshell` (Nutshell's
//!   `mint` on PATH, `pip install cashu`; FakeWallet, input fees on).
//!
//! `BENCH_TRACE=1` also writes an strace of one dispatch to
//! /tmp/bench_dispatch.strace; `BENCH_TRACE="CMD ARGS"` runs that one
//! dispatch under another tool instead (`heaptrack -o /tmp/ht`, `perf stat`).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/nutshell.rs"]
mod nutshell;

#[path = "bench_dispatch/backends.rs"]
mod backends;

use std::cell::Cell;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backends::{MintKind, RelayKind};
use common::{ScriptedWorker, TestEnv};

/// What one measured run starts.
#[derive(Clone, Copy)]
enum Run {
    Raw,
    NoCheck,
    Check,
    RawJournal,
    BaselineNoCheck,
    BaselineCheck,
}

/// The runs, interleaved: the first three are the targets' (see
/// [`print_targets`]); the baseline's with `BENCH_BASELINE`.
fn measured(baseline: bool) -> Vec<Run> {
    let mut runs = vec![Run::Raw, Run::NoCheck, Run::Check, Run::RawJournal];
    if baseline {
        runs.extend([Run::BaselineNoCheck, Run::BaselineCheck]);
    }
    runs
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::Raw => "raw publisher",
            Run::NoCheck => "jobctl rerun --no-check --token T",
            Run::Check => "jobctl rerun --token T (spent-check)",
            Run::RawJournal => "raw publisher + durable SQLite commit before the send",
            Run::BaselineNoCheck => "baseline: rerun --no-check --token T",
            Run::BaselineCheck => "baseline: rerun --token T (spent-check)",
        }
    }
}

/// The binaries, the client's world and the worker the runs dispatch to.
struct Bench {
    bin: PathBuf,
    baseline: Option<PathBuf>,
    raw: PathBuf,
    env: TestEnv,
    urls: Vec<String>,
    worker: ScriptedWorker,
    secret: String,
    token: String,
    n: Cell<usize>,
}

impl Bench {
    /// A `jobctl` command in the client's world, the relays in the env.
    fn jobctl(&self, args: &[&str]) -> Command {
        self.jobctl_of(&self.bin, args)
    }

    /// [`Self::jobctl`] of the binary `bin`.
    fn jobctl_of(&self, bin: &std::path::Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.env_clear()
            .env("HOME", self.env.home())
            .env("XDG_CONFIG_HOME", self.env.home().join("config"))
            .env("XDG_DATA_HOME", self.env.home().join("data"))
            .env("JOBCTL_RELAYS", self.urls.join(","))
            .args(args);
        c
    }

    /// One `rerun` of the token to the worker, with a fresh tag.
    fn rerun(&self, no_check: bool) -> Command {
        self.rerun_of(&self.bin, no_check)
    }

    /// [`Self::rerun`] of the binary `bin`.
    fn rerun_of(&self, bin: &std::path::Path, no_check: bool) -> Command {
        self.n.set(self.n.get() + 1);
        let tag = format!("bench-{}", self.n.get());
        let worker = self.worker.hex();
        let mut args = vec!["rerun", "-q"];
        if no_check {
            args.push("--no-check");
        }
        args.extend(["--token", &self.token, "--worker", &worker, "--", &tag]);
        self.jobctl_of(bin, &args)
    }

    /// The command of one run, output discarded.
    fn command(&self, what: Run) -> Command {
        let mut c = match what {
            Run::Raw | Run::RawJournal => {
                let mut c = Command::new(&self.raw);
                c.env_clear()
                    .env("JOBCTL_SECRET_KEY", &self.secret)
                    .arg(self.worker.hex())
                    .args(&self.urls);
                if matches!(what, Run::RawJournal) {
                    c.env("RAW_JOURNAL", self.env.home().join("raw-journal.sqlite"));
                }
                c
            }
            Run::NoCheck => self.rerun(true),
            Run::Check => self.rerun(false),
            Run::BaselineNoCheck | Run::BaselineCheck => {
                let bin = self.baseline.as_deref().unwrap_or(&self.bin);
                self.rerun_of(bin, matches!(what, Run::BaselineNoCheck))
            }
        };
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    }
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let (bin, raw) = binaries();
    assert!(
        std::path::Path::new("/usr/bin/time").exists(),
        "needs GNU time (/usr/bin/time) for peak RSS"
    );

    let (relay_kind, mint_kind) = (RelayKind::from_env(), MintKind::from_env());
    let mint = mint_kind.start();
    let relays = relay_kind.start();
    let urls = relays.urls();
    let worker = ScriptedWorker::new();
    backends::publish(
        &urls,
        &[worker.ad("bench", Some(mint.url()), common::now())],
    );
    let env = TestEnv::new();
    let secret = env.keys.secret_key().to_secret_hex();
    let baseline = std::env::var_os("BENCH_BASELINE").map(PathBuf::from);
    let all = measured(baseline.is_some());
    let mut bench = Bench {
        bin,
        baseline,
        raw,
        env,
        urls,
        worker,
        secret,
        token: String::new(),
        n: Cell::new(0),
    };
    bench.token = fund(&bench, mint.url());

    for _ in 0..5 {
        for &k in &all {
            timed(&mut bench.command(k));
        }
    }
    if std::env::var_os("BENCH_TRACE").is_some() {
        trace(&bench);
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); all.len()];
    let mut mint_rt = Vec::new();
    for _ in 0..runs {
        for (i, k) in all.iter().enumerate() {
            times[i].push(timed(&mut bench.command(*k)));
        }
        mint_rt.push(mint_round_trip(mint.url(), &bench.token));
    }
    // Peak RSS of each, measured apart (a forked child inherits the
    // harness's high-water mark until exec; GNU time forks from a small
    // process).
    let rss: Vec<i64> = all
        .iter()
        .map(|k| {
            (0..3)
                .map(|_| peak_rss(&bench.command(*k), None))
                .max()
                .unwrap_or(0)
        })
        .collect();

    println!(
        "relays: {} x {}; mint: {}",
        backends::RELAYS,
        relays.describe(),
        mint.describe()
    );
    let mint_med = median(&mut mint_rt);
    println!(
        "{runs} runs each, 3 loopback relays, mint on loopback (checkstate round trip median {:.2} ms)",
        ms(mint_med)
    );
    println!("| what | median ms | p90 ms | peak RSS MB |");
    println!("|---|---|---|---|");
    let mut med = vec![Duration::ZERO; all.len()];
    for (i, k) in all.iter().enumerate() {
        med[i] = median(&mut times[i]);
        println!(
            "| {} | {:.2} | {:.2} | {:.1} |",
            k.name(),
            ms(med[i]),
            ms(p90(&times[i])),
            rss[i] as f64 / 1024.0
        );
    }
    let batch_rss = batch(&bench);
    println!();
    print_targets(
        &[med[0], med[1], med[2]],
        mint_med,
        rss[1].max(rss[2]),
        batch_rss,
    );
}

/// JOBCTL_BIN and RAW_BIN, else the release builds.
fn binaries() -> (PathBuf, PathBuf) {
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
    (bin, raw)
}

/// Fund the wallet at `mint` (its fake Lightning pays the invoice) and
/// make the one token every run checks (and never spends).
fn fund(bench: &Bench, mint: &str) -> String {
    let ok = bench
        .jobctl(&["wallet", "mint", "100", "--mint", mint, "--timeout", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("wallet mint");
    assert!(ok.success(), "wallet mint failed");
    let out = bench
        .jobctl(&["wallet", "send", "10"])
        .stderr(Stdio::null())
        .output()
        .expect("wallet send");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("cashu"), "no token from wallet send");
    token
}

/// One traced dispatch, to see where the time goes.
fn trace(bench: &Bench) {
    let worker = bench.worker.hex();
    let c = bench.jobctl(&[
        "rerun",
        "--no-check",
        "--token",
        &bench.token,
        "--worker",
        &worker,
        "--",
        "trace",
    ]);
    // BENCH_TRACE=1: strace; any other value is a command line to run
    // the dispatch under instead (e.g. `heaptrack -o /tmp/ht`).
    let wrap = std::env::var("BENCH_TRACE").unwrap_or_default();
    let mut t = if wrap == "1" {
        let mut t = Command::new("strace");
        t.args([
            "-f",
            "--seccomp-bpf",
            "-tt",
            "-o",
            "/tmp/bench_dispatch.strace",
        ])
        .args([
            "-e",
            "trace=execve,openat,connect,fsync,sendto,recvfrom,pwrite64,clone3,exit_group",
        ]);
        t
    } else {
        let mut words = wrap.split_whitespace();
        let mut t = Command::new(words.next().unwrap_or("env"));
        t.args(words);
        t
    };
    t.env_clear().arg(c.get_program()).args(c.get_args());
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    let _ = t.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// A 1,000-job batch: prints its row (time and peak RSS); the peak RSS.
fn batch(bench: &Bench) -> i64 {
    if std::env::var_os("BENCH_NO_BATCH").is_some() {
        return 0;
    }
    let worker = bench.worker.hex();
    let lines: String = (0..1000)
        .map(|i| format!("{{\"worker\":\"{worker}\",\"unpaid\":true,\"args\":[\"b{i}\"]}}\n"))
        .collect();
    let mut c = bench.jobctl(&["rerun", "-q", "--batch", "-", "--concurrency", "64"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let batch_rss = peak_rss(&c, Some(&lines));
    let batch_t = t.elapsed();
    println!(
        "| jobctl rerun --batch (1,000 jobs) | {:.0} (total) | | {:.1} |",
        ms(batch_t),
        batch_rss as f64 / 1024.0
    );
    batch_rss
}

/// The issue's targets against the medians `med` (raw, no-check, check).
fn print_targets(med: &[Duration; 3], mint_med: Duration, one_rss: i64, batch_rss: i64) {
    let [raw, no_check, check] = med.map(ms);
    let check_target = raw + ms(mint_med) + 2.0;
    println!(
        "targets: no-check <= 1.5 x raw: {:.2} <= {:.2} {}; check <= raw + mint RTT + 2 ms: {:.2} <= {:.2} {}; one dispatch <= 20 MB: {}; batch <= 50 MB: {}",
        no_check,
        1.5 * raw,
        verdict(no_check <= 1.5 * raw),
        check,
        check_target,
        verdict(check <= check_target),
        verdict(one_rss <= 20 * 1024),
        verdict(batch_rss <= 50 * 1024),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The 90th percentile of sorted `v`.
fn p90(v: &[Duration]) -> Duration {
    v[v.len() * 9 / 10]
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

/// One NUT-07 `checkstate` of `token` over a fresh connection.
fn mint_round_trip(mint: &str, token: &str) -> Duration {
    // The round trip a spent-check needs: NUT-07 `checkstate` of the
    // benchmark token's proofs, on a fresh connection.
    use std::str::FromStr;
    let t = cdk::nuts::Token::from_str(token).expect("token");
    let ys: Vec<String> = t
        .token_secrets()
        .iter()
        .map(|s| cdk::dhke::hash_to_curve(s.as_bytes()).expect("Y").to_hex())
        .collect();
    let body = serde_json::json!({ "Ys": ys }).to_string();
    let host = mint.trim_start_matches("http://").trim_end_matches('/');
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(host).expect("mint");
    s.set_nodelay(true).ok();
    s.write_all(
        format!(
            "POST /v1/checkstate HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let elapsed = t.elapsed();
    assert!(
        String::from_utf8_lossy(&buf).contains("\"states\""),
        "checkstate failed: {}",
        String::from_utf8_lossy(&buf)
    );
    elapsed
}
