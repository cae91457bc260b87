//! Dispatch at the floor (issue 14): `republish --all` sends every
//! journaled job at once over one pool, each to the relays that have not
//! accepted it, and records every outcome.

mod common;

use std::collections::BTreeSet;

use common::*;

/// A relay URL nothing listens on (connections are refused at once).
fn refused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("ws://127.0.0.1:{port}")
}

#[test]
fn republish_all_sends_every_journaled_job_to_every_relay_once() {
    let env = TestEnv::new();
    let w = ScriptedWorker::new();
    let dead = refused_url();
    let mut ids = BTreeSet::new();
    for i in 0..6 {
        let out = env
            .cmd()
            .args(["rerun", "--unpaid", "--worker", &w.hex(), "--relay", &dead])
            .args(["--timeout", "3s", "--", &format!("job{i}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        ids.insert(stdout(&out).trim().to_string());
    }
    assert_eq!(ids.len(), 6);

    let (a, b) = (TestRelay::start(), TestRelay::start());
    let out = env
        .cmd()
        .args(["republish", "--all", "--relay", &a.url, "--relay", &b.url])
        .args(["--min-accept", "2", "--timeout", "10s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: BTreeSet<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(printed, ids);
    for relay in [&a, &b] {
        let on: Vec<String> = relay.events().iter().map(|e| e.id.to_hex()).collect();
        let set: BTreeSet<String> = on.iter().cloned().collect();
        assert_eq!(set, ids);
        assert_eq!(on.len(), ids.len(), "each job once");
    }

    // Every outcome was recorded: nothing is left to republish.
    let out = env
        .cmd()
        .args(["republish", "--all", "--relay", &a.url, "--relay", &b.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to republish"),
        "{}",
        stderr(&out)
    );
}
