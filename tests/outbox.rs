//! Routing to the worker (NIP-65 outbox model): a job also goes to the
//! worker's inbox relays from its kind 10002 relay list, and `watch`
//! reads the worker's outbox relays too.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nostr_sdk::prelude::*;

/// A kind 10002 relay list signed by the worker.
fn relay_list(w: &ScriptedWorker, read: &[&str], write: &[&str]) -> Event {
    let read: Vec<RelayUrl> = read.iter().map(|u| RelayUrl::parse(u).unwrap()).collect();
    let write: Vec<RelayUrl> = write.iter().map(|u| RelayUrl::parse(u).unwrap()).collect();
    jobctl::outbox::relay_list_builder(&read, &write)
        .sign_with_keys(&w.keys)
        .unwrap()
}

fn has_event(relay: &TestRelay, id: &str) -> bool {
    relay.events().iter().any(|e| e.id.to_hex() == id)
}

#[test]
fn job_lands_on_the_workers_inbox_and_watch_reads_its_outbox() {
    let env = TestEnv::new();
    let (a, b) = (TestRelay::start(), TestRelay::start());
    // The worker's own relay, which the client has not configured.
    let home = TestRelay::start();
    let w = ScriptedWorker::new();
    a.insert(&relay_list(&w, &[&home.url], &[&home.url]));
    let out = env
        .cmd()
        .args(["rerun", "--unpaid", "--worker", &w.hex(), "--json"])
        .args(["--relay", &a.url, "--relay", &b.url, "--timeout", "10s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let id = report["id"].as_str().unwrap().to_string();
    assert!(has_event(&a, &id) && has_event(&b, &id));
    assert!(
        has_event(&home, &id),
        "the job must reach the worker's inbox"
    );
    let inbox = report["worker_inbox"].as_array().unwrap();
    assert_eq!(inbox.len(), 1, "{report}");
    assert_eq!(report["relays"].as_array().unwrap().len(), 3);

    // The worker answers on its own relay only: watch still finds it,
    // from the relay list cached in the journal.
    let me = env.keys.public_key().to_hex();
    let result = w.result(
        &id,
        &me,
        &ResultSpec {
            exit_code: 0,
            ..ResultSpec::default()
        },
    );
    w.send(&[&home], &[result]);
    assert!(a.events().iter().all(|e| e.kind != Kind::Custom(5101)));
    let out = env
        .cmd()
        .args(["watch", &id, "--timeout", "10s"])
        .args(["--relay", &a.url, "--relay", &b.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn no_outbox_publishes_to_the_configured_relays_only() {
    let env = TestEnv::new();
    let a = TestRelay::start();
    let home = TestRelay::start();
    let w = ScriptedWorker::new();
    a.insert(&relay_list(&w, &[&home.url], &[]));
    let out = env
        .cmd()
        .args(["rerun", "--unpaid", "--no-outbox", "--worker", &w.hex()])
        .args(["--relay", &a.url, "--timeout", "10s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(has_event(&a, &id));
    assert!(
        !has_event(&home, &id),
        "--no-outbox must not use the worker's list"
    );

    // The config key does the same.
    env.write_config("outbox = false\n");
    let out = env
        .cmd()
        .args(["rerun", "--unpaid", "--worker", &w.hex()])
        .args(["--relay", &a.url, "--timeout", "10s", "--", "again"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(has_event(&a, &id) && !has_event(&home, &id));
}

#[test]
fn silent_relay_list_lookup_stays_within_the_timeout() {
    let env = TestEnv::new();
    let a = TestRelay::start();
    // Accepts TCP, never answers: the lookup (and the publish there) hang.
    let hole = Blackhole::new();
    let w = ScriptedWorker::new();
    let start = Instant::now();
    let out = env
        .cmd()
        .args([
            "rerun",
            "--unpaid",
            "--worker",
            &w.hex(),
            "--min-accept",
            "1",
        ])
        .args(["--relay", &a.url, "--relay", &hole.url, "--timeout", "2s"])
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(has_event(&a, &id));
}

/// The reference worker serving on its own relay only, which the client
/// has not configured: its relay list (copied to the client's relay, as an
/// indexer would hold it) routes the job there, and `watch` follows it.
#[test]
fn a_worker_on_an_unconfigured_relay_gets_the_job_and_the_client_follows_it() {
    use jobctl::worker::{Worker, WorkerConfig};
    let env = TestEnv::new();
    let mint = common::mint::TestMint::start();
    let (a, home) = (TestRelay::start(), TestRelay::start());
    let dir = tempfile::tempdir().unwrap();
    let wkeys = Keys::generate();
    let cfg = WorkerConfig {
        name: "outbox worker".into(),
        allow_cmds: vec!["echo".into()],
        price_per_second: 1,
        mints: vec![mint.url.clone()],
        min_duration: 1,
        max_duration: 60,
        blob_dir: Some(dir.path().join("blobs")),
        wallet_dir: Some(dir.path().join("wallet")),
        freelist: vec![env.keys.public_key().to_hex()],
        ..Default::default()
    };
    let home_url = RelayUrl::parse(&home.url).unwrap();
    let worker = RT
        .block_on(Worker::start(cfg, wkeys.clone(), &[home_url]))
        .unwrap();
    let wpk = wkeys.public_key();
    let lists = home.query(Filter::new().kind(Kind::Custom(10002)).author(wpk));
    assert_eq!(lists.len(), 1, "the worker publishes its relay list");
    a.insert(&lists[0]);

    let out = env
        .cmd()
        .args(["rerun", "--unpaid", "--worker", &wpk.to_hex(), "--json"])
        .args(["--relay", &a.url, "--timeout", "10s", "--cmd", "echo"])
        .args(["--", "routed"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let id = report["id"].as_str().unwrap().to_string();
    assert!(has_event(&a, &id) && has_event(&home, &id));
    assert_eq!(report["worker_inbox"].as_array().unwrap().len(), 1);

    let out = env
        .cmd()
        .args(["watch", &id, "--exit-status", "--timeout", "30s"])
        .args(["--relay", &a.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The worker answered on its relay only.
    assert!(a.events().iter().all(|e| e.kind != Kind::Custom(5101)));
    RT.block_on(worker.shutdown());
}

#[test]
fn a_batch_routes_each_job_to_its_workers_inbox_too() {
    let env = TestEnv::new();
    let a = TestRelay::start();
    let home = TestRelay::start();
    let (routed, plain) = (ScriptedWorker::new(), ScriptedWorker::new());
    a.insert(&relay_list(&routed, &[&home.url], &[&home.url]));
    let lines: Vec<String> = [&routed, &plain, &routed]
        .iter()
        .enumerate()
        .map(|(i, w)| {
            serde_json::json!({"worker": w.hex(), "cmd": "act", "args": [format!("j{i}")], "unpaid": true})
                .to_string()
        })
        .collect();
    let out = env
        .cmd()
        .args([
            "rerun",
            "--batch",
            "-",
            "--json",
            "--relay",
            &a.url,
            "--timeout",
            "10s",
        ])
        .write_stdin(lines.join("\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reports: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 3);
    for (r, to_home) in reports.iter().zip([true, false, true]) {
        let id = r["id"].as_str().unwrap();
        assert!(has_event(&a, id));
        assert_eq!(has_event(&home, id), to_home, "{r}");
        let inbox = r["worker_inbox"].as_array().map_or(0, Vec::len);
        assert_eq!(inbox, usize::from(to_home), "{r}");
    }
    // --no-outbox sends a new batch to the configured relay only.
    let out = env
        .cmd()
        .args(["rerun", "--batch", "-", "--no-outbox", "--relay", &a.url])
        .write_stdin(
            serde_json::json!({"worker": routed.hex(), "cmd": "act", "args": ["off"], "unpaid": true})
                .to_string(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!has_event(&home, stdout(&out).trim()));
}
