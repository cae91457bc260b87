//! `--timeout` bounds the whole command. Every command that talks to the
//! network is run against a silent peer (a TCP listener that accepts and
//! holds connections, never answering) as relay and as mint, and must end
//! within its timeout plus a generous margin, with the documented exit
//! code and a one-line reason that says "timed out". These are bounds,
//! not benchmarks.

mod common;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::mint::TestMint;
use common::*;
use nostr_sdk::prelude::*;

/// What every test passes as `--timeout`.
const TIMEOUT: &str = "2s";
/// The bound asserted: the timeout plus room for process start and a busy
/// machine.
const BOUND: Duration = Duration::from_secs(5);

/// A peer that accepts TCP connections and never says a word.
struct Silent {
    port: u16,
}

impl Silent {
    fn new() -> Self {
        Self::listen(TcpListener::bind("127.0.0.1:0").expect("bind"))
    }

    /// On a given port (a mint that went silent after funding the wallet).
    fn on_port(port: u16) -> Self {
        // The old server may take a moment to let go of the port.
        for _ in 0..50 {
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                return Self::listen(l);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("port {port} stays busy");
    }

    fn listen(l: TcpListener) -> Self {
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for s in l.incoming() {
                match s {
                    Ok(s) => held.push(s),
                    Err(_) => break,
                }
            }
        });
        Silent { port }
    }

    fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A finished run.
struct Run {
    code: Option<i32>,
    took: Duration,
    stdout: String,
    stderr: String,
}

fn run(env: &TestEnv, args: &[&str]) -> Run {
    run_with(env, args, None)
}

fn run_with(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> Run {
    let mut c = env.cmd();
    c.args(args);
    if let Some(s) = stdin {
        c.write_stdin(s.to_string());
    }
    finish(&mut c)
}

/// Run a prepared command (e.g. `env.rerun(..)` with more flags) to the end.
fn finish(c: &mut assert_cmd::Command) -> Run {
    let started = Instant::now();
    let out = c.output().expect("run jobctl");
    Run {
        code: out.status.code(),
        took: started.elapsed(),
        stdout: stdout(&out),
        stderr: stderr(&out),
    }
}

impl Run {
    /// Ended in time with `code`; the last stderr line is one `error:`
    /// line saying "timed out".
    fn timed_out(&self, code: i32, what: &str) {
        self.in_time(what);
        assert_eq!(self.code, Some(code), "{what}: {}", self.stderr);
        let last = self.stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: ") && last.contains("timed out"),
            "{what}: the reason is one `error: ... timed out` line: {}",
            self.stderr
        );
    }

    fn in_time(&self, what: &str) {
        assert!(
            self.took < BOUND,
            "{what} took {:?} with --timeout {TIMEOUT}: {}",
            self.took,
            self.stderr
        );
    }

    /// Never "the worker has none" when the lookup did not finish.
    fn no_false_absence(&self, what: &str) {
        for wrong in ["advertises no mint", "has no advertisement", "not found on"] {
            assert!(
                !self.stderr.contains(wrong),
                "{what}: a timed-out lookup reads as `{wrong}`: {}",
                self.stderr
            );
        }
    }
}

fn worker_hex() -> String {
    Keys::generate().public_key().to_hex()
}

/// A journaled job that never reached a relay (published to a silent one).
fn unpublished_job(env: &TestEnv, relay: &Silent, token: Option<&str>) -> String {
    let mut c = env.rerun(&worker_hex(), &[&relay.ws()]);
    c.args(["--timeout", "1s"]);
    match token {
        Some(t) => c.args(["--token", t, "--no-check"]),
        None => c.arg("--unpaid"),
    };
    let r = finish(&mut c);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    let id = r.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{}", r.stdout);
    id
}

#[test]
fn rerun_to_a_silent_relay_fails_in_time_and_says_why() {
    let env = TestEnv::new();
    let relay = Silent::new();
    let w = worker_hex();
    let r = finish(
        env.rerun_unpaid(&w, &[&relay.ws()])
            .args(["--timeout", TIMEOUT]),
    );
    r.in_time("rerun --unpaid");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("NOT published"), "{}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("why: ") && l.contains("timed out")),
        "{}",
        r.stderr
    );
    // With a good relay too, the silent one costs at most the deadline.
    let good = TestRelay::start();
    let token = token_v4(&[8], &Silent::new().http());
    let r = finish(env.rerun(&w, &[&good.url, &relay.ws()]).args([
        "--token",
        &token,
        "--timeout",
        TIMEOUT,
    ]));
    // The token's mint is silent too: its check only warns.
    r.in_time("rerun --token (silent mint) with one good relay");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    assert_eq!(good.events().len(), 1);
}

#[test]
fn rerun_lookups_that_time_out_say_timed_out() {
    let env = TestEnv::new();
    let relay = Silent::new();
    let w = worker_hex();
    let ws = relay.ws();
    for extra in [
        vec!["--amount", "5"],
        vec!["--amount", "5", "--max-price", "10"],
        vec!["--unpaid", "--max-price", "10"],
    ] {
        let r = finish(
            env.rerun(&w, &[&ws])
                .args(&extra)
                .args(["--timeout", TIMEOUT]),
        );
        let what = format!("rerun {}", extra.join(" "));
        r.timed_out(1, &what);
        r.no_false_absence(&what);
        assert!(r.stderr.contains("advertisement"), "{what}: {}", r.stderr);
    }
    // A past job that is not in the journal: looked up on the relays.
    let job = EventId::all_zeros().to_hex();
    let r = run(
        &env,
        &[
            "rerun",
            &job,
            "--unpaid",
            "--relay",
            &relay.ws(),
            "--timeout",
            TIMEOUT,
        ],
    );
    r.timed_out(1, "rerun JOB");
    r.no_false_absence("rerun JOB");
    assert!(env.journal_jobs().is_empty(), "nothing was journaled");
}

#[test]
fn rerun_with_a_silent_mint_fails_in_time() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let mint = Silent::new();
    let w = worker_hex();
    let token = token_v4(&[8, 2], &mint.http());
    // --lock swaps the token at its mint before anything is signed.
    let r = finish(env.rerun(&w, &[&relay.url]).args([
        "--token",
        &token,
        "--no-check",
        "--lock",
        "--timeout",
        TIMEOUT,
    ]));
    r.timed_out(1, "rerun --token --no-check --lock");
    assert!(r.stderr.contains(&mint.http()), "{}", r.stderr);
    assert!(relay.events().is_empty(), "nothing was published");
    // --require-check keeps its documented exit 2, and says why.
    let r = finish(env.rerun(&w, &[&relay.url]).args([
        "--token",
        &token,
        "--require-check",
        "--timeout",
        TIMEOUT,
    ]));
    r.in_time("rerun --token --require-check");
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    assert!(relay.events().is_empty(), "nothing was published");
}

#[test]
fn wallet_commands_and_rerun_amount_with_a_mint_gone_silent() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let url = mint.url.clone();
    let out = env
        .cmd()
        .args(["wallet", "mint", "100", "--mint", &url, "--timeout", "30s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A well-formed invoice to pay later: the one the mint just issued.
    let invoice = stderr(&out)
        .split_whitespace()
        .find(|w| w.starts_with("lnbc"))
        .expect("the invoice is shown")
        .to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    drop(mint);
    let _silent = Silent::on_port(port);
    let relay = TestRelay::start();
    let w = worker_hex();
    for (what, args) in [
        (
            "wallet pay",
            vec![
                "wallet",
                "pay",
                &invoice,
                "--mint",
                &url,
                "--timeout",
                TIMEOUT,
            ],
        ),
        (
            "wallet mint",
            vec!["wallet", "mint", "10", "--mint", &url, "--timeout", TIMEOUT],
        ),
        (
            // A locked token is always a swap at the mint.
            "rerun --amount --mint --lock",
            vec![
                "rerun",
                "--amount",
                "5",
                "--mint",
                &url,
                "--lock",
                "--worker",
                &w,
                "--relay",
                &relay.url,
                "--timeout",
                TIMEOUT,
            ],
        ),
    ] {
        let r = run(&env, &args);
        r.timed_out(1, what);
        assert!(
            r.stderr.contains(&url),
            "{what} names the mint: {}",
            r.stderr
        );
    }
    assert!(relay.events().is_empty(), "nothing was published");
    // Without --timeout, the config's timeouts.mint bounds it.
    env.write_config("[timeouts]\nmint = \"2s\"\n");
    let r = run(&env, &["wallet", "pay", &invoice, "--mint", &url]);
    r.timed_out(1, "wallet pay (timeouts.mint)");
}

#[test]
fn wallet_receive_and_mint_at_a_silent_mint() {
    let env = TestEnv::new();
    let mint = Silent::new();
    let token = token_v4(&[4], &mint.http());
    let r = run(&env, &["wallet", "receive", &token, "--timeout", TIMEOUT]);
    r.timed_out(1, "wallet receive");
    let r = run_with(
        &env,
        &["wallet", "receive", "--timeout", TIMEOUT],
        Some(&token),
    );
    r.timed_out(1, "wallet receive (stdin)");
    let r = run(
        &env,
        &[
            "wallet",
            "mint",
            "10",
            "--mint",
            &mint.http(),
            "--timeout",
            TIMEOUT,
        ],
    );
    r.timed_out(1, "wallet mint");
    let r = run(
        &env,
        &[
            "wallet",
            "pay",
            "lnbc10n1invalid",
            "--mint",
            &mint.http(),
            "--timeout",
            TIMEOUT,
        ],
    );
    // Whatever the invoice, a silent mint can only cost the deadline.
    r.in_time("wallet pay");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[test]
fn reads_of_a_silent_relay_time_out() {
    let env = TestEnv::new();
    let relay = Silent::new();
    let job = EventId::all_zeros().to_hex();
    let ws = relay.ws();
    for (what, args) in [
        ("status", vec!["status", &job]),
        ("show", vec!["show", &job]),
        ("logs", vec!["logs", &job]),
        ("list", vec!["list"]),
        ("workers", vec!["workers"]),
    ] {
        let mut args = args.clone();
        args.extend(["--relay", &ws, "--timeout", TIMEOUT]);
        let r = run(&env, &args);
        r.timed_out(1, what);
        r.no_false_absence(what);
    }
    // watch documents 124 for --timeout.
    let r = run(&env, &["watch", &job, "--relay", &ws, "--timeout", TIMEOUT]);
    r.timed_out(124, "watch");
    r.no_false_absence("watch");
}

#[test]
fn reads_with_one_silent_relay_still_succeed_in_time() {
    let env = TestEnv::new();
    let good = TestRelay::start();
    let silent = Silent::new();
    let w = ScriptedWorker::new();
    w.send(&[&good], &[w.ad("builder", None, now())]);
    let id = dispatch(&env, &w.hex(), &[&good], &[]);
    let both = ["--relay", &good.url, "--relay", &silent.ws()];
    for (what, args) in [
        ("status", vec!["status", id.as_str()]),
        ("show", vec!["show", id.as_str()]),
        ("list", vec!["list"]),
        ("workers", vec!["workers"]),
    ] {
        let mut args = args.clone();
        args.extend(both);
        args.extend(["--timeout", TIMEOUT]);
        let r = run(&env, &args);
        r.in_time(what);
        assert_eq!(r.code, Some(0), "{what}: {}", r.stderr);
        assert!(r.stderr.contains("did not answer"), "{what}: {}", r.stderr);
    }
    // watch: one deadline for loading and watching, not one each.
    let mut args = vec!["watch", id.as_str()];
    args.extend(both);
    args.extend(["--timeout", TIMEOUT]);
    let r = run(&env, &args);
    r.timed_out(124, "watch with one silent relay");
    assert!(r.stderr.contains("pending"), "{}", r.stderr);
}

#[test]
fn republish_cancel_and_reclaim_against_silent_peers() {
    let env = TestEnv::new();
    let relay = Silent::new();
    let mint = Silent::new();
    let token = token_v4(&[8], &mint.http());
    let paid = unpublished_job(&env, &relay, Some(&token));
    let unpaid = unpublished_job(&env, &relay, None);
    let ws = relay.ws();
    let r = run(&env, &["republish", "--all", "--timeout", TIMEOUT]);
    r.timed_out(1, "republish --all");
    let r = run(
        &env,
        &["republish", &unpaid, "--relay", &ws, "--timeout", TIMEOUT],
    );
    r.timed_out(1, "republish JOB");
    // The job is journaled, so cancel gets to publish its deletion; the
    // relay never answers.
    let r = run(
        &env,
        &["cancel", &unpaid, "--relay", &ws, "--timeout", TIMEOUT],
    );
    r.timed_out(1, "cancel (journaled job)");
    let r = run(
        &env,
        &[
            "cancel",
            &EventId::all_zeros().to_hex(),
            "--relay",
            &ws,
            "--timeout",
            TIMEOUT,
        ],
    );
    r.timed_out(1, "cancel (unknown job)");
    r.no_false_absence("cancel (unknown job)");
    // Reclaiming the unpublished paid job redeems its token at a silent mint.
    let r = run(
        &env,
        &["reclaim", &paid, "--relay", &ws, "--timeout", TIMEOUT],
    );
    r.in_time("reclaim");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("{paid} failed")), "{}", r.stdout);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    // Nothing was lost: the token is still journaled with its job.
    assert!(env
        .journal_jobs()
        .iter()
        .any(|(id, _, _, t)| id == &paid && t.as_deref() == Some(token.as_str())));
}

#[test]
fn the_config_default_bounds_commands_without_timeout() {
    let env = TestEnv::new();
    let relay = Silent::new();
    env.write_config("[timeouts]\nquery = \"2s\"\npublish = \"2s\"\n");
    let w = worker_hex();
    let r = run(&env, &["status", &w, "--relay", &relay.ws()]);
    r.timed_out(1, "status (timeouts.query)");
    let r = finish(env.rerun(&w, &[&relay.ws()]).args(["--amount", "5"]));
    r.timed_out(1, "rerun --amount (timeouts.publish)");
    r.no_false_absence("rerun --amount (timeouts.publish)");
}

#[test]
fn the_worker_starts_despite_a_silent_relay() {
    let env = TestEnv::new();
    let relay = Silent::new();
    let mut child = env
        .std_cmd()
        .args([
            "worker",
            "--relay",
            &relay.ws(),
            "--accept-mint",
            "http://127.0.0.1:3338",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn worker");
    let mut out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 256];
        let n = out.read(&mut buf).unwrap_or(0);
        let _ = tx.send(String::from_utf8_lossy(&buf[..n]).to_string());
    });
    // It waits at most 5 s for a connection and 10 s for its first
    // advertisement to be acknowledged, then serves.
    let line = rx.recv_timeout(Duration::from_secs(25));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the worker printed its npub in time");
    assert!(line.starts_with("npub1"), "{line}");
}

#[test]
fn a_batch_shares_one_deadline() {
    let env = TestEnv::new();
    let good = TestRelay::start();
    let silent = Silent::new();
    let w = worker_hex();
    let lines: String = (0..5)
        .map(|i| format!("{{\"worker\":\"{w}\",\"unpaid\":true,\"args\":[\"{i}\"]}}\n"))
        .collect();
    // Two jobs at a time: five jobs must not cost three deadlines.
    let args = [
        "rerun",
        "--batch",
        "-",
        "--concurrency",
        "2",
        "--relay",
        &good.url,
        "--relay",
        &silent.ws(),
        "--timeout",
        TIMEOUT,
    ];
    let r = run_with(&env, &args, Some(&lines));
    r.in_time("rerun --batch with one silent relay");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(good.events().len(), 5);
    let only_silent = [
        "rerun",
        "--batch",
        "-",
        "--relay",
        &silent.ws(),
        "--timeout",
        TIMEOUT,
    ];
    let r = run_with(&env, &only_silent, Some(&lines.replace("[\"", "[\"again ")));
    r.in_time("rerun --batch to a silent relay");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("0/5 job(s)"), "{}", r.stderr);
}

#[test]
fn logs_from_a_silent_log_server_time_out() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let blobs = Silent::new();
    let w = ScriptedWorker::new();
    let id = dispatch(&env, &w.hex(), &[&relay], &[]);
    let me = env.keys.public_key().to_hex();
    let spec = ResultSpec {
        stdout: Some(format!("{}/{}", blobs.http(), "a".repeat(64))),
        ..Default::default()
    };
    w.send(&[&relay], &[w.result(&id, &me, &spec)]);
    let r = run(
        &env,
        &["logs", &id, "--relay", &relay.url, "--timeout", TIMEOUT],
    );
    r.timed_out(1, "logs (silent log server)");
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn one_silent_relay_does_not_hold_up_watch_or_rerun_job() {
    let env = TestEnv::new();
    let good = TestRelay::start();
    let silent = Silent::new();
    let w = ScriptedWorker::new();
    let id = dispatch(&env, &w.hex(), &[&good], &[]);
    let me = env.keys.public_key().to_hex();
    w.send(&[&good], &[w.result(&id, &me, &ResultSpec::default())]);
    // No --timeout: loading would be bounded by timeouts.query (10s), but
    // once the good relay had the job the silent one gets only a moment.
    let r = run(
        &env,
        &["watch", &id, "--relay", &good.url, "--relay", &silent.ws()],
    );
    r.in_time("watch (no --timeout) with one silent relay");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // A past job looked up on the relays (another user's journal has none).
    let other = TestEnv::new();
    let r = run(
        &other,
        &[
            "rerun",
            &id,
            "--unpaid",
            "--relay",
            &good.url,
            "--relay",
            &silent.ws(),
            "--timeout",
            "3s",
        ],
    );
    r.in_time("rerun JOB with one silent relay");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        good.events()
            .iter()
            .filter(|e| e.kind == Kind::Custom(5100))
            .count(),
        2
    );
}
