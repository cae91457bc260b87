//! Managing jobs end to end: the journal (written before publishing,
//! crash-safe), idempotent retries, rerun of past jobs, cancel, stats,
//! republish and batches, against real loopback relays.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use nostr_sdk::prelude::*;

const MINT: &str = "http://127.0.0.1:3338";

fn payment_of(e: &Event) -> Option<String> {
    tags(e)
        .into_iter()
        .find(|t| t[0] == "payment")
        .map(|t| t[1].clone())
}

#[test]
fn all_relays_down_keeps_the_job_then_the_idempotent_retry_publishes_it() {
    let env = TestEnv::new();
    let closed = ClosedPort::new();
    let port = closed.port();
    let url = closed.url.clone();
    let w = ScriptedWorker::new();
    let token = token_v4(&[64], MINT);
    let run = |token: &str| {
        env.rerun(&w.hex(), &[&url])
            .args(["--idempotency-key", "ci-run-42", "--timeout", "2s"])
            .env("JOBCTL_TOKEN", token)
            .output()
            .unwrap()
    };
    let first = run(&token);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let id = stdout(&first);
    assert_eq!(id.len(), 64);
    assert!(stderr(&first).contains("republish"), "{}", stderr(&first));
    let rows = env.journal_jobs();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, id);
    assert_eq!(rows[0].1, "unpublished");
    assert_eq!(
        rows[0].3.as_deref(),
        Some(token.as_str()),
        "the token is kept"
    );

    // Listed as unpublished, with its amount, offline.
    let out = env
        .cmd()
        .args(["list", "--local", "--json"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v[0]["state"], "unpublished");
    assert_eq!(v[0]["amount"], 64);

    // The relay comes up; the retry (with a different token, as a CI retry
    // might have) signs nothing new and spends nothing new.
    drop(closed);
    let relay = TestRelay::on_port(port);
    let other_token = token_v4(&[99], MINT);
    let second = run(&other_token);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(stdout(&second), id, "same event id");
    assert!(
        stderr(&second).contains("was not used"),
        "{}",
        stderr(&second)
    );
    let events = relay.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id.to_hex(), id);
    assert_eq!(
        payment_of(&events[0]),
        Some(token),
        "the original token, not the new one"
    );
    let rows = env.journal_jobs();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].2, "published");

    // Again: nothing new anywhere.
    let third = run(&other_token);
    assert_eq!(third.status.code(), Some(0));
    assert_eq!(stdout(&third), id);
    assert_eq!(relay.events().len(), 1);
}

#[test]
fn killed_between_journal_write_and_publish_loses_nothing() {
    let env = TestEnv::new();
    let hole = Blackhole::new();
    let w = ScriptedWorker::new();
    let token = token_v3(&[16, 16], MINT);
    let mut child = env
        .std_rerun(&w.hex(), &[&hole.url])
        .env("JOBCTL_TOKEN", &token)
        .args(["--timeout", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The publish stalls on the black hole; wait for the journal row (its
    // pre-flight check done: no longer `checking`), then kill.
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.journal_jobs().first().is_none_or(|j| j.1 == "checking") {
        assert!(Instant::now() < deadline, "journal never written");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let rows = env.journal_jobs();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "unpublished");
    assert_eq!(rows[0].3.as_deref(), Some(token.as_str()));
    let out = env.cmd().args(["list", "--local"]).output().unwrap();
    assert!(stderr(&out).contains("unpublished") && stderr(&out).contains("32 sat"));

    let relay = TestRelay::start();
    let out = env
        .cmd()
        .args(["republish", "--all", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), rows[0].0);
    let events = relay.events();
    assert_eq!(events.len(), 1);
    assert_eq!(payment_of(&events[0]), Some(token));
    // Nothing left to republish.
    let out = env
        .cmd()
        .args(["republish", "--all", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("nothing to republish"));
}

#[test]
fn same_key_twice_is_one_event_and_conflicting_content_exits_2() {
    let env = TestEnv::new();
    let (a, b) = (TestRelay::start(), TestRelay::start());
    let w = ScriptedWorker::new();
    let run = |args: &[&str]| {
        env.rerun(&w.hex(), &[&a.url, &b.url])
            .env("JOBCTL_IDEMPOTENCY_KEY", "build-7")
            .args(args)
            .output()
            .unwrap()
    };
    let t1 = token_v4(&[5], MINT);
    let first = run(&["--token", &t1, "--", "-j", "build"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    std::thread::sleep(Duration::from_millis(1100)); // a new second: a new signature would differ
    let t2 = token_v4(&[5], MINT);
    let second = run(&["--token", &t2, "--", "-j", "build"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(stdout(&first), stdout(&second));
    assert_eq!(a.events().len(), 1);
    assert_eq!(b.events().len(), 1);
    assert!(stderr(&second).contains("accepted earlier"));

    let conflict = run(&["--token", &t2, "--", "-j", "deploy"]);
    assert_eq!(conflict.status.code(), Some(2));
    let err = stderr(&conflict);
    assert!(
        err.contains("build-7") && err.contains(&stdout(&first)),
        "{err}"
    );
    assert_eq!(a.events().len(), 1, "nothing published on conflict");
}

#[test]
fn rerun_of_a_past_job_keeps_its_shape_and_links_it() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let parent = EventId::all_zeros().to_hex();
    let t1 = token_v4(&[10], MINT);
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args([
            "--token", &t1, "--cmd", "act", "--env", "MODE=ci", "--run", &parent, "--secret",
            "API=one", "--", "-j", "test",
        ])
        .output()
        .unwrap();
    let old = stdout(&out);
    // Secrets must be given again.
    let t2 = token_v4(&[12], MINT);
    let out = env
        .cmd()
        .args(["rerun", &old, "--relay", &relay.url, "--token", &t2])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("API"), "{}", stderr(&out));
    let out = env
        .cmd()
        .args([
            "rerun", &old, "--relay", &relay.url, "--token", &t2, "--secret", "API=two",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let new = stdout(&out);
    assert_ne!(new, old);
    let ev = relay.query(Filter::new().id(EventId::from_hex(&new).unwrap()));
    let t = tags(&ev[0]);
    assert_eq!(t[1], ["worker".to_string(), w.hex()]);
    assert_eq!(t[2], ["cmd", "act"]);
    assert_eq!(t[3], ["args", "-j", "test"]);
    assert_eq!(t[4], ["payment".to_string(), t2]);
    assert_eq!(t[5], ["e".to_string(), parent]);
    assert_eq!(t[6], ["env", "MODE", "ci"]);
    assert_eq!(t[7][0], "secret");

    // The journal links them; show prints the journal timeline.
    let out = env
        .cmd()
        .args(["show", &new, "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    let v = json(&out);
    let journal = v["journal"].as_array().unwrap();
    assert!(
        journal
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains(&old)),
        "{v}"
    );

    // A job only on the relays (another machine's journal) works too.
    let fresh = TestEnv::new();
    let t3 = token_v4(&[3], MINT);
    let out = fresh
        .cmd()
        .args([
            "rerun", &old, "--relay", &relay.url, "--token", &t3, "--secret", "API=3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn cancel_publishes_a_deletion_and_refuses_finished_or_foreign_jobs() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let id = dispatch(&env, &w.hex(), &[&relay], &["--", "long"]);
    let out = env
        .cmd()
        .args(["cancel", &id, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let del_id = stdout(&out);
    let dels = relay.query(Filter::new().kind(Kind::EventDeletion));
    assert_eq!(dels.len(), 1);
    assert_eq!(dels[0].id.to_hex(), del_id);
    assert_eq!(dels[0].pubkey, env.keys.public_key());
    assert_eq!(
        tags(&dels[0]),
        vec![
            vec!["e".to_string(), id.clone()],
            vec!["k".to_string(), "5100".to_string()]
        ]
    );
    assert!(stderr(&out).contains("accepted"));
    // The relay honoured NIP-09; the job still shows from the journal.
    let out = env
        .cmd()
        .args(["show", &id, "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(json(&out)["journal"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["state"] == "cancel-requested"));

    // A finished job needs --force.
    let me = env.keys.public_key().to_hex();
    let done = dispatch(&env, &w.hex(), &[&relay], &["--", "done"]);
    w.send(&[&relay], &[w.result(&done, &me, &ResultSpec::default())]);
    let out = env
        .cmd()
        .args(["cancel", &done, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--force"));
    let out = env
        .cmd()
        .args(["cancel", &done, "--force", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Someone else's job: refused, nothing published.
    let other = TestEnv::new();
    let theirs = dispatch(&other, &w.hex(), &[&relay], &["--", "theirs"]);
    let before = relay.query(Filter::new().kind(Kind::EventDeletion)).len();
    let out = env
        .cmd()
        .args(["cancel", &theirs, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("only its author"));
    assert_eq!(
        relay.query(Filter::new().kind(Kind::EventDeletion)).len(),
        before
    );
}

#[test]
fn stats_and_the_journal_timeline_follow_observed_states() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let (w1, w2) = (ScriptedWorker::new(), ScriptedWorker::new());
    let me = env.keys.public_key().to_hex();
    let pay = |n: u64| token_v4(&[n], MINT);
    let mut ids = Vec::new();
    for (i, (w, amount)) in [(&w1, 10u64), (&w1, 20), (&w2, 30), (&w2, 40)]
        .iter()
        .enumerate()
    {
        let out = env
            .rerun(&w.hex(), &[&relay.url])
            .args(["--token", &pay(*amount), "--", &format!("job{i}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        ids.push(stdout(&out));
    }
    let done = |code: i64, secs: f64, change: Option<u64>| ResultSpec {
        exit_code: code,
        duration: Some(secs),
        change: change.map(pay),
        ..Default::default()
    };
    w1.send(
        &[&relay],
        &[
            w1.status(&ids[0], &me, "running", "", now() - 5),
            w1.result(&ids[0], &me, &done(0, 10.0, Some(4))),
        ],
    );
    w1.send(&[&relay], &[w1.result(&ids[1], &me, &done(2, 20.0, None))]);
    w2.send(
        &[&relay],
        &[w2.result(&ids[2], &me, &done(0, 30.0, Some(6)))],
    );
    w2.send(&[&relay], &[w2.status(&ids[3], &me, "running", "", now())]);
    // Observing them (status) records the transitions in the journal.
    let out = env
        .cmd()
        .args(["status", "-", "--relay", &relay.url])
        .write_stdin(ids.join("\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = env.cmd().args(["stats", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let o = &v["overall"];
    assert_eq!(o["jobs"], 4);
    assert_eq!(o["by_status"]["success"], 2);
    assert_eq!(o["by_status"]["failed"], 1);
    assert_eq!(o["by_status"]["running"], 1);
    assert!((o["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(o["median_duration"], 20.0);
    assert_eq!(o["paid"]["sat"], 100);
    assert_eq!(o["change_returned"]["sat"], 10);
    assert_eq!(v["workers"][w1.hex()]["jobs"], 2);
    assert_eq!(v["workers"][w2.hex()]["paid"]["sat"], 70);

    let out = env
        .cmd()
        .args(["show", &ids[0], "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    let journal: Vec<String> = json(&out)["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        journal,
        ["unpublished", "pending", "running", "success"],
        "{journal:?}"
    );
    let out = env.cmd().args(["stats"]).output().unwrap();
    assert!(stderr(&out).contains("67%"), "{}", stderr(&out));
}

#[test]
fn a_batch_of_1000_jobs() {
    let env = TestEnv::new();
    let (a, b) = (TestRelay::start(), TestRelay::start());
    let w = ScriptedWorker::new();
    let lines: Vec<String> = (0..1000)
        .map(|i| {
            serde_json::json!({
                "worker": w.hex(), "cmd": "act", "args": ["-j", format!("job-{i}")],
                "env": {"N": i.to_string()}, "unpaid": true, "idempotency_key": format!("b-{i}"),
            })
            .to_string()
        })
        .collect();
    let file = env.home().join("jobs.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = env
        .cmd()
        .args(["rerun", "--batch"])
        .arg(&file)
        .args(["--relay", &a.url, "--relay", &b.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ids: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(ids.len(), 1000);
    assert_eq!(a.events().len(), 1000);
    assert_eq!(b.events().len(), 1000);
    assert!(stderr(&out).contains("1000/1000"));
    // Re-running the batch is idempotent: same ids, nothing new.
    let again = env
        .cmd()
        .args(["rerun", "--batch"])
        .arg(&file)
        .args(["--relay", &a.url, "--relay", &b.url])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let again_ids: Vec<String> = stdout(&again).lines().map(str::to_string).collect();
    assert_eq!(again_ids, ids);
    assert_eq!(a.events().len(), 1000);
}

#[test]
fn a_bad_batch_line_publishes_nothing() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let good = serde_json::json!({"worker": w.hex(), "unpaid": true}).to_string();
    for bad in [
        r#"{"worker": "npub1nope", "unpaid": true}"#.to_string(),
        r#"{"unpaid": true, "colour": "blue"}"#.to_string(),
        serde_json::json!({"worker": w.hex(), "token": "cashuAbad"}).to_string(),
        serde_json::json!({"worker": w.hex()}).to_string(),
        "not json".to_string(),
    ] {
        let out = env
            .cmd()
            .args(["rerun", "--batch", "-", "--relay", &relay.url])
            .write_stdin(format!("{good}\n{bad}\n"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
        assert!(relay.events().is_empty());
        assert!(env.journal_jobs().is_empty(), "nothing journaled either");
    }
}

#[test]
fn corrupt_or_unopenable_journal_is_a_clear_error() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    std::fs::create_dir_all(env.journal_path().parent().unwrap()).unwrap();
    write_private(&env.journal_path(), "this is not a database, it is a poem");
    let out = env
        .rerun_unpaid(&ScriptedWorker::new().hex(), &[&relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: journal ") && err.contains("journal.sqlite"),
        "{err}"
    );
    assert!(
        relay.events().is_empty(),
        "nothing published without a journal"
    );
    assert_eq!(
        std::fs::read(env.journal_path()).unwrap(),
        b"this is not a database, it is a poem"
    );

    // --journal / JOBCTL_JOURNAL pick another file, created 0600.
    let other = env.home().join("elsewhere/j.sqlite");
    let out = env
        .rerun_unpaid(&ScriptedWorker::new().hex(), &[&relay.url])
        .env("JOBCTL_JOURNAL", &other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&other).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn list_merges_unpublished_jobs_from_the_journal() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let closed = ClosedPort::new();
    let w = ScriptedWorker::new();
    let published = dispatch(&env, &w.hex(), &[&relay], &["--", "ok"]);
    let out = env
        .rerun(&w.hex(), &[&closed.url])
        .args(["--token", &token_v4(&[7], MINT)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stuck = stdout(&out);
    let out = env
        .cmd()
        .args(["list", "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    let v = json(&out);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    let state = |id: &str| arr.iter().find(|x| x["id"] == id).unwrap()["state"].clone();
    assert_eq!(state(&published), "pending");
    assert_eq!(state(&stuck), "unpublished");
    let out = env
        .cmd()
        .args([
            "list",
            "--json",
            "--status",
            "unpublished",
            "--relay",
            &relay.url,
        ])
        .output()
        .unwrap();
    assert_eq!(json(&out).as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_creates_no_journal_and_unpublished_is_consistent() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let out = env
        .rerun(&ScriptedWorker::new().hex(), &[&relay.url])
        .args(["--token", "cashuAgarbage"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !env.journal_path().exists(),
        "exit 2 leaves no journal behind"
    );

    let closed = ClosedPort::new();
    let out = env
        .rerun_unpaid(&ScriptedWorker::new().hex(), &[&closed.url])
        .output()
        .unwrap();
    let id = stdout(&out);
    let out = env
        .cmd()
        .args(["status", &id, "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)[0]["state"], "unpublished");
}

#[test]
fn watch_journals_each_transition_and_json_keeps_stderr_quiet() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let me = env.keys.public_key().to_hex();
    let out = env
        .rerun_unpaid(&w.hex(), &[&relay.url])
        .args(["--json", "--idempotency-key", "k1"])
        .output()
        .unwrap();
    let id = json(&out)["id"].as_str().unwrap().to_string();
    let again = env
        .rerun_unpaid(&w.hex(), &[&relay.url])
        .args(["--json", "--idempotency-key", "k1"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert!(stderr(&again).is_empty(), "{}", stderr(&again));
    assert_eq!(json(&again)["id"], id.as_str());

    let t = now();
    w.send(&[&relay], &[w.status(&id, &me, "queued", "", t - 2)]);
    w.send(
        &[&relay],
        &[w.result(
            &id,
            &me,
            &ResultSpec {
                at: Some(t),
                ..Default::default()
            },
        )],
    );
    let out = env
        .cmd()
        .args(["watch", &id, "--timeout", "10s", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env
        .cmd()
        .args(["show", &id, "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    let states: Vec<String> = json(&out)["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states,
        ["unpublished", "pending", "queued", "success"],
        "{states:?}"
    );
}
