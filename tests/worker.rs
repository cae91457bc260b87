//! The reference worker end to end: the real worker (in process, the code
//! `jobctl worker` runs) on loopback relays with a real cdk mint, driven by
//! the real CLI.

mod common;

use std::time::Duration;

use common::mint::TestMint;
use common::*;
use jobctl::worker::{Worker, WorkerConfig};
use nostr_sdk::prelude::*;

struct World {
    env: TestEnv,
    mint: TestMint,
    relay: TestRelay,
    worker: Option<Worker>,
    wkeys: Keys,
    _dir: tempfile::TempDir,
}

impl World {
    fn new(concurrency: usize) -> World {
        let env = TestEnv::new();
        let mint = TestMint::start();
        let relay = TestRelay::start();
        let dir = tempfile::tempdir().unwrap();
        let wkeys = Keys::generate();
        let cfg = WorkerConfig {
            name: "test worker".into(),
            allow_cmds: vec!["echo".into(), "false".into(), "sleep".into(), "sh".into()],
            price_per_second: 1,
            mints: vec![mint.url.clone()],
            min_duration: 1,
            max_duration: 60,
            concurrency,
            blob_dir: Some(dir.path().join("blobs")),
            wallet_dir: Some(dir.path().join("wallet")),
            ..Default::default()
        };
        let url = RelayUrl::parse(&relay.url).unwrap();
        let worker = RT
            .block_on(Worker::start(cfg, wkeys.clone(), &[url]))
            .unwrap();
        let out = env
            .cmd()
            .args(["wallet", "mint", "500", "--mint", &mint.url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        World {
            env,
            mint,
            relay,
            worker: Some(worker),
            wkeys,
            _dir: dir,
        }
    }

    fn worker_hex(&self) -> String {
        self.wkeys.public_key().to_hex()
    }

    fn rerun(&self, amount: &str, args: &[&str]) -> String {
        let out = self
            .env
            .rerun(&self.worker_hex(), &[&self.relay.url])
            .args(["--amount", amount])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    }

    fn watch(&self, id: &str) -> std::process::Output {
        self.env
            .cmd()
            .args([
                "watch",
                id,
                "--exit-status",
                "--timeout",
                "40s",
                "--relay",
                &self.relay.url,
            ])
            .output()
            .unwrap()
    }

    fn balance(&self) -> u64 {
        let out = self.env.cmd().args(["wallet", "balance"]).output().unwrap();
        stdout(&out).parse().unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            RT.block_on(w.shutdown());
        }
    }
}

#[test]
fn success_logs_change_and_a_refused_command() {
    let w = World::new(2);
    let id = w.rerun("20", &["--cmd", "echo", "--", "hello", "from", "loom"]);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    // Statuses are addressable: a late watch sees the newest, then the result.
    assert!(
        err.contains("success") && err.contains("exit 0") && err.contains("stdout: http"),
        "{err}"
    );
    let out = w
        .env
        .cmd()
        .args(["logs", &id, "--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from loom\n");
    // Paid 20, billed 1 s at 1 sat/s: 19 back.
    let before = w.balance();
    let out = w
        .env
        .cmd()
        .args(["reclaim", &id, "--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{id} claimed 19"));
    assert_eq!(w.balance(), before + 19);

    // Non-zero exit.
    let id = w.rerun("5", &["--cmd", "false"]);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("exit 1"));

    // A command the worker does not allow: failed with the reason, and the
    // worker kept nothing, so the whole payment comes back.
    let id = w.rerun("7", &["--cmd", "rm", "--", "-rf", "/"]);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not allowed"), "{}", stderr(&out));
    let before = w.balance();
    let out = w
        .env
        .cmd()
        .args(["reclaim", &id, "--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), format!("{id} claimed 7"));
    assert_eq!(w.balance(), before + 7);
}

#[test]
fn foreign_mint_and_spent_payments_are_refused() {
    let w = World::new(1);
    // A token from a mint the worker does not accept.
    let foreign = token_v4(&[16], "http://127.0.0.1:9");
    let out = w
        .env
        .rerun(&w.worker_hex(), &[&w.relay.url])
        .args(["--token", &foreign, "--no-check", "--cmd", "echo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not accepted"), "{}", stderr(&out));

    // A token somebody already redeemed (the pre-flight check skipped).
    let token = stdout(&w.env.cmd().args(["wallet", "send", "10"]).output().unwrap());
    assert!(common::mint::TestWallet::new(&w.mint.url)
        .receive(&token, &[])
        .is_ok());
    let out = w
        .env
        .rerun(&w.worker_hex(), &[&w.relay.url])
        .args(["--token", &token, "--no-check", "--cmd", "echo", "--", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("payment refused"), "{}", stderr(&out));
}

#[test]
fn queue_cancel_and_timeout_kill() {
    let w = World::new(1);
    // Paid for 2 s, runs 30: killed at the paid-for duration.
    let long = w.rerun("2", &["--cmd", "sleep", "--", "30"]);
    // Queued behind it (concurrency 1), then cancelled before it starts.
    let queued = w.rerun("9", &["--cmd", "echo", "--", "never"]);
    std::thread::sleep(Duration::from_millis(500));
    let out = w
        .env
        .cmd()
        .args(["status", &queued, "--json", "--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(json(&out)[0]["state"], "queued");
    let out = w
        .env
        .cmd()
        .args(["cancel", &queued, "--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = w.watch(&long);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("exit 124"), "{}", stderr(&out));
    let out = w.watch(&queued);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Full refund as change.
    let before = w.balance();
    let out = w
        .env
        .cmd()
        .args(["reclaim", &queued, "--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        format!("{queued} claimed 9"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.balance(), before + 9);
}

#[test]
fn secrets_reach_the_job_environment_only() {
    let w = World::new(1);
    let id = {
        let out = w
            .env
            .rerun(&w.worker_hex(), &[&w.relay.url])
            .args([
                "--amount",
                "5",
                "--cmd",
                "sh",
                "--secret",
                "API=s3cr3t",
                "--env",
                "MODE=ci",
                "--",
                "-c",
                "printf '%s/%s' \"$API\" \"$MODE\"",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = w
        .env
        .cmd()
        .args(["logs", &id, "--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "s3cr3t/ci");
    assert!(!std::env::vars().any(|(_, v)| v == "s3cr3t"));
}

#[test]
fn the_worker_command_shuts_down_cleanly_and_never_leaves_a_paid_job_silent() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    // The worker is the real `jobctl worker` process with its own key.
    let wenv = TestEnv::new();
    let wpk = wenv.keys.public_key().to_hex();
    let mut child = wenv
        .std_cmd()
        .args([
            "worker",
            "--allow-cmd",
            "sleep",
            "--price",
            "1",
            "--accept-mint",
            &mint.url,
        ])
        .args(["--min-duration", "1", "--relay", &relay.url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its npub on stdout says it is serving.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("npub1"), "{line}");
    let out = env
        .cmd()
        .args(["wallet", "mint", "100", "--mint", &mint.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env
        .rerun(&wpk, &[&relay.url])
        .args(["--amount", "50", "--cmd", "sleep", "--", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out);
    // Wait until it runs, then SIGTERM the worker.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = env
            .cmd()
            .args(["status", &id, "--json", "--relay", &relay.url])
            .output()
            .unwrap();
        let v = json(&out);
        if v[0]["state"] == "running" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "job never ran: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let st = child.wait().unwrap();
    assert!(st.success(), "worker exit: {st}");
    // The job ended with a result and the unused payment came back as change.
    let out = env
        .cmd()
        .args(["watch", &id, "--timeout", "10s", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("exit 143"), "{}", stderr(&out));
    let out = env
        .cmd()
        .args(["reclaim", &id, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("claimed 4"),
        "most of the 50 sat came back: {}",
        stdout(&out)
    );
}
