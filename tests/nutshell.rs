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
            .args(["worker", "-vv", "--allow-cmd", "echo", "--allow-cmd", "sleep"])
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

fn fund(env: &TestEnv, mint: &str, amount: u64) {
    let out = env
        .cmd()
        .args(["wallet", "mint", &amount.to_string(), "--mint", mint])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn balance(env: &TestEnv) -> u64 {
    let out = env.cmd().args(["wallet", "balance"]).output().unwrap();
    stdout(&out).parse().unwrap()
}

#[test]
fn zero_fee_paid_jobs_always_get_a_result_with_change() {
    let Some(mint) = Nutshell::start(0) else {
        return;
    };
    let relay = TestRelay::start();
    let client = TestEnv::new();
    fund(&client, &mint.url, 200);
    let mut worker = WorkerProc::start(TestEnv::new(), &mint.url, &relay.url, &[]);
    for round in 0..4 {
        let out = client
            .cmd()
            .args(["rerun", "--amount", "20", "--cmd", "sleep"])
            .args(["--worker", &worker.hex(), "--relay", &relay.url])
            .args(["--", "5"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let id = stdout(&out);
        let out = client
            .cmd()
            .args(["watch", &id, "--exit-status", "--timeout", "40s"])
            .args(["--relay", &relay.url])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}\nworker log:\n{}",
            stderr(&out),
            worker.log()
        );
        let before = balance(&client);
        let out = client
            .cmd()
            .args(["reclaim", &id, "--relay", &relay.url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("{id} claimed 15"), "round {round}");
        assert_eq!(balance(&client), before + 15);
    }
    eprintln!("{}", worker.log());
    worker.stop();
    let _ = Duration::from_secs(0);
}

struct InProc {
    env: TestEnv,
    relay: TestRelay,
    worker: Option<jobctl::worker::Worker>,
    wkeys: nostr_sdk::Keys,
    dir: tempfile::TempDir,
}

impl InProc {
    fn new(mint: &str) -> InProc {
        let env = TestEnv::new();
        let relay = TestRelay::start();
        let dir = tempfile::tempdir().unwrap();
        let wkeys = nostr_sdk::Keys::generate();
        let cfg = jobctl::worker::WorkerConfig {
            allow_cmds: vec!["echo".into(), "sleep".into()],
            price_per_second: 1,
            mints: vec![mint.to_string()],
            min_duration: 1,
            max_duration: 60,
            concurrency: 2,
            blob_dir: Some(dir.path().join("blobs")),
            wallet_dir: Some(dir.path().join("wallet")),
            ..Default::default()
        };
        let url = nostr_sdk::RelayUrl::parse(&relay.url).unwrap();
        let worker = RT
            .block_on(jobctl::worker::Worker::start(cfg, wkeys.clone(), &[url]))
            .unwrap();
        fund(&env, mint, 200);
        InProc { env, relay, worker: Some(worker), wkeys, dir }
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            RT.block_on(w.shutdown());
        }
    }
}

#[test]
fn in_process_zero_fee() {
    let Some(mint) = Nutshell::start(0) else {
        return;
    };
    let w = InProc::new(&mint.url);
    let _ = &w.dir;
    for round in 0..4 {
        let out = w.env
            .cmd()
            .args(["rerun", "--amount", "20", "--cmd", "echo"])
            .args(["--worker", &w.wkeys.public_key().to_hex(), "--relay", &w.relay.url])
            .args(["--", "round"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let id = stdout(&out);
        let out = w.env
            .cmd()
            .args(["watch", &id, "--exit-status", "--timeout", "40s"])
            .args(["--relay", &w.relay.url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "round {round}: {}", stderr(&out));
    }
}
