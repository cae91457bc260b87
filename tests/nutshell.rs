//! The reference worker and the CLI against Nutshell, the reference Python
//! Cashu mint (an independent implementation, not cdk's): fee-aware change,
//! a result after every paid job, and catching up on jobs published while
//! the worker was down. Skipped (with a message) when `mint` is not on PATH.

mod common;
#[path = "common/nutshell.rs"]
mod nutshell;

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use jobctl::payment::PaymentToken;
use nostr_sdk::prelude::*;
use nutshell::Nutshell;

/// A `jobctl worker` process with its own key, wallet and -vv log file.
struct WorkerProc {
    env: TestEnv,
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl WorkerProc {
    fn start(env: TestEnv, mint: &str, relay: &str, extra: &[&str]) -> WorkerProc {
        let log = env.home().join(format!("worker-{}.log", now_nanos()));
        let file = std::fs::File::create(&log).unwrap();
        let mut child = env
            .std_cmd()
            .args([
                "worker",
                "-vv",
                "--allow-cmd",
                "echo",
                "--allow-cmd",
                "sleep",
            ])
            .args(["--price", "1", "--accept-mint", mint, "--min-duration", "1"])
            .args(["--relay", relay])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("npub1"), "{line}");
        WorkerProc {
            env,
            child: Some(child),
            log,
        }
    }

    fn hex(&self) -> String {
        self.env.keys.public_key().to_hex()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash: no chance to publish anything.
    fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Spendable sat in `env`'s wallet.
fn spendable(env: &TestEnv) -> u64 {
    balance(env).0
}

/// Dispatch a paid `cmd args` job; its id.
fn rerun(client: &TestEnv, worker: &str, relay: &str, amount: u64, cmd: &[&str]) -> String {
    let out = client
        .rerun(worker, &[relay])
        .args(["--amount", &amount.to_string(), "--cmd", cmd[0], "--"])
        .args(&cmd[1..])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

fn watch_ok(client: &TestEnv, id: &str, relay: &str, worker: &WorkerProc) {
    let out = client
        .cmd()
        .args([
            "watch",
            id,
            "--exit-status",
            "--timeout",
            "40s",
            "--relay",
            relay,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\nworker log:\n{}",
        stderr(&out),
        worker.log()
    );
}

/// `reclaim` one job; the amount claimed.
fn reclaim(client: &TestEnv, id: &str, relay: &str) -> u64 {
    let out = client
        .cmd()
        .args(["reclaim", id, "--relay", relay])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    let rest = line
        .strip_prefix(&format!("{id} claimed "))
        .unwrap_or_else(|| panic!("not claimed: {line}\n{}", stderr(&out)));
    rest.parse().unwrap()
}

/// The worker's results for `job` as stored by the relay.
fn results_for(relay: &TestRelay, worker: &str, job: &str) -> Vec<Event> {
    relay.query(
        Filter::new()
            .kind(Kind::Custom(5101))
            .author(PublicKey::from_hex(worker).unwrap())
            .event(EventId::from_hex(job).unwrap()),
    )
}

/// Every paid test's start: Nutshell charging `fee_ppk` input fees, a
/// relay, a client whose wallet holds `sats` there, and a reference worker
/// process (`args` added to its command line). `None` (the test skips,
/// saying so) when Nutshell's `mint` is not installed.
struct World {
    mint: Nutshell,
    relay: TestRelay,
    client: TestEnv,
    worker: WorkerProc,
}

fn world(fee_ppk: u64, sats: u64, args: &[&str]) -> Option<World> {
    let mint = Nutshell::start(fee_ppk)?;
    let relay = TestRelay::start();
    let client = TestEnv::new();
    fund(&client, &mint.url, sats);
    let worker = WorkerProc::start(TestEnv::new(), &mint.url, &relay.url, args);
    Some(World {
        mint,
        relay,
        client,
        worker,
    })
}

#[test]
fn change_at_a_fee_mint_is_fee_aware_and_the_sats_add_up() {
    let Some(World {
        mint: _mint, // keeps Nutshell running
        relay,
        client,
        mut worker,
    }) = world(100, 200, &[])
    else {
        return;
    };
    let id = rerun(&client, &worker.hex(), &relay.url, 20, &["echo", "fees"]);
    watch_ok(&client, &id, &relay.url, &worker);
    // What the client paid: the token in the request (its face value
    // includes the fee the worker pays to redeem it).
    let req = relay.query(Filter::new().id(EventId::from_hex(&id).unwrap()));
    let token = tags(&req[0])
        .into_iter()
        .find(|t| t[0] == "payment")
        .map(|t| t[1].clone())
        .unwrap();
    let paid = PaymentToken::parse(&token).unwrap().info().amount;
    let results = results_for(&relay, &worker.hex(), &id);
    assert_eq!(results.len(), 1);
    assert!(
        tags(&results[0]).iter().any(|t| t[0] == "change"),
        "no change in the result: {:?}\nworker log:\n{}",
        results[0],
        worker.log()
    );
    let change = reclaim(&client, &id, &relay.url);
    worker.stop();
    assert!(
        !worker.log().contains("cannot make change"),
        "{}",
        worker.log()
    );
    let kept = spendable(&worker.env);
    // Billed 1 s at 1 sat/s; the worker keeps that (plus at most a sat
    // that could not be split off), the mint's fees come out of the change.
    let billed = 1;
    assert!(
        (billed..=billed + 1).contains(&kept),
        "worker kept {kept} of {paid}"
    );
    // paid = kept by the worker + change the client got + mint fees, and at
    // 100 ppk each of the three swaps (the worker's receive, the change,
    // the client's redemption) costs one sat here.
    let fees = paid - kept - change;
    eprintln!("paid {paid} = kept {kept} + change {change} + fees {fees}");
    assert!(
        (1..=3).contains(&fees),
        "paid {paid} = kept {kept} + change {change} + fees {fees}"
    );
    assert!(change >= 20 - billed - 3, "change {change}");
}

#[test]
fn zero_fee_paid_jobs_always_get_a_result_with_change() {
    let Some(World {
        mint: _mint, // keeps Nutshell running
        relay,
        client,
        mut worker,
    }) = world(0, 200, &[])
    else {
        return;
    };
    let rounds = 4;
    for round in 0..rounds {
        let id = rerun(&client, &worker.hex(), &relay.url, 20, &["echo", "round"]);
        watch_ok(&client, &id, &relay.url, &worker);
        let before = spendable(&client);
        assert_eq!(reclaim(&client, &id, &relay.url), 19, "round {round}");
        assert_eq!(spendable(&client), before + 19);
    }
    worker.stop();
    assert_eq!(spendable(&worker.env), rounds, "billed 1 sat a job");
}

#[test]
fn a_restarted_worker_catches_up_on_open_jobs_only() {
    let Some(World {
        mint,
        relay,
        client,
        mut worker,
    }) = world(0, 200, &[])
    else {
        return;
    };
    let wpk = worker.hex();
    let done = rerun(&client, &wpk, &relay.url, 20, &["echo", "before"]);
    watch_ok(&client, &done, &relay.url, &worker);
    worker.stop();
    // Published while the worker is down; and one cancelled meanwhile.
    let missed = rerun(&client, &wpk, &relay.url, 20, &["echo", "while", "down"]);
    let dropped = rerun(&client, &wpk, &relay.url, 9, &["echo", "never"]);
    let out = client
        .cmd()
        .args(["cancel", &dropped, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(300));
    let env = std::mem::replace(&mut worker.env, TestEnv::bare());
    let worker = WorkerProc::start(env, &mint.url, &relay.url, &["--catch-up", "1h"]);
    watch_ok(&client, &missed, &relay.url, &worker);
    let out = client
        .cmd()
        .args(["logs", &missed, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "while down\n");
    assert_eq!(reclaim(&client, &missed, &relay.url), 19);
    // The cancelled one was never taken (this relay honours NIP-09 and
    // dropped it; one that does not gets a `cancelled` status instead).
    let from_worker = relay.query(
        Filter::new()
            .author(PublicKey::from_hex(&wpk).unwrap())
            .event(EventId::from_hex(&dropped).unwrap()),
    );
    assert!(
        from_worker
            .iter()
            .all(|e| e.kind == Kind::Custom(30100) && e.content.contains("cancelled")),
        "{from_worker:?}"
    );
    // The finished job was not run again: still exactly one result.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        results_for(&relay, &wpk, &done).len(),
        1,
        "{}",
        worker.log()
    );
    assert_eq!(results_for(&relay, &wpk, &missed).len(), 1);
}

#[test]
fn concurrent_paid_jobs_at_a_zero_fee_mint_all_get_change() {
    let Some(World {
        mint: _mint, // keeps Nutshell running
        relay,
        client,
        mut worker,
    }) = world(0, 300, &[])
    else {
        return;
    };
    for round in 0..2 {
        let ids: Vec<String> = (0..3)
            .map(|i| {
                rerun(
                    &client,
                    &worker.hex(),
                    &relay.url,
                    20,
                    &["sleep", &format!("{}", 1 + i % 2)],
                )
            })
            .collect();
        for id in &ids {
            watch_ok(&client, id, &relay.url, &worker);
        }
        for id in &ids {
            let got = reclaim(&client, id, &relay.url);
            assert!((16..=19).contains(&got), "round {round}: {got}");
        }
    }
    worker.stop();
}

fn wait_running(client: &TestEnv, id: &str, relay: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = client
            .cmd()
            .args(["status", id, "--json", "--relay", relay])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if v[0]["state"] == "running" {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never ran: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_mint_that_stops_answering_cannot_hold_back_the_result() {
    let Some(World {
        mint,
        relay,
        client,
        worker,
    }) = world(100, 100, &["--mint-timeout", "2s"])
    else {
        return;
    };
    // With input fees the change token is never made of proofs the
    // wallet already holds: it needs a swap at the mint.
    let id = rerun(&client, &worker.hex(), &relay.url, 20, &["sleep", "2"]);
    wait_running(&client, &id, &relay.url);
    // The mint hangs while the job runs: making change cannot finish.
    mint.pause();
    let started = std::time::Instant::now();
    watch_ok(&client, &id, &relay.url, &worker);
    mint.resume();
    // Within the job (2 s) plus two mint timeouts (2 x 2 s), with slack.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let results = results_for(&relay, &worker.hex(), &id);
    assert_eq!(results.len(), 1);
    assert!(
        !tags(&results[0]).iter().any(|t| t[0] == "change"),
        "{}",
        worker.log()
    );
    assert!(
        results[0].content.contains("no change for the 17 sat owed")
            && results[0].content.contains("did not answer"),
        "{}",
        results[0].content
    );
}

#[test]
fn a_paid_job_interrupted_by_a_crash_runs_again_after_restart() {
    let Some(World {
        mint,
        relay,
        client,
        mut worker,
    }) = world(0, 100, &[])
    else {
        return;
    };
    let wpk = worker.hex();
    let id = rerun(&client, &wpk, &relay.url, 20, &["sleep", "3"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = client
            .cmd()
            .args(["status", &id, "--json", "--relay", &relay.url])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if v[0]["state"] == "running" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ran: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Killed after it took the payment, before any result.
    worker.crash();
    assert!(results_for(&relay, &wpk, &id).is_empty());
    let env = std::mem::replace(&mut worker.env, TestEnv::bare());
    let worker = WorkerProc::start(env, &mint.url, &relay.url, &[]);
    watch_ok(&client, &id, &relay.url, &worker);
    // Paid 20 once, billed 4 s (sleep 3 takes a little over 3 s).
    let got = reclaim(&client, &id, &relay.url);
    assert!((15..=17).contains(&got), "{got}\n{}", worker.log());
    assert_eq!(results_for(&relay, &wpk, &id).len(), 1);
}
