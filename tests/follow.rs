//! Following jobs end to end: the built binary reads what a scripted
//! worker (a real key publishing real events over websockets) reports on
//! loopback relays, and fetches logs from a real HTTP blob server.

mod common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use nostr_sdk::prelude::*;
use serde_json::Value;

/// A running `jobctl watch` whose stderr is collected as it comes.
struct Watch {
    child: Child,
    err: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Start `jobctl watch` and wait until it is subscribed (its
/// "waiting"/first-state line), so every later event arrives live.
fn spawn_watch(env: &TestEnv, args: &[&str]) -> Watch {
    let mut child = spawn_watch_raw(env, args);
    let err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = err.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !err.lock().unwrap().contains("watching") {
        assert!(
            std::time::Instant::now() < deadline,
            "watch never subscribed"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Watch { child, err }
}

fn spawn_watch_raw(env: &TestEnv, args: &[&str]) -> Child {
    let mut c = env.std_cmd();
    c.args(["-v", "watch"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().expect("spawn watch")
}

/// Wait for a watch with a generous bound; returns (code, stdout, stderr).
fn finish(w: Watch) -> (Option<i32>, String, String) {
    let Watch { mut child, err } = w;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let err = err.lock().unwrap().clone();
            return (st.code(), out, err);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("watch did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pause() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn watch_follows_queued_running_success_with_exit_status() {
    let env = TestEnv::new();
    let (a, b) = (TestRelay::start(), TestRelay::start());
    let w = ScriptedWorker::new();
    let blobs = BlobServer::start();
    let id = dispatch(&env, &w.hex(), &[&a, &b], &["--", "-j", "build"]);
    let me = env.keys.public_key().to_hex();
    let watch = spawn_watch(
        &env,
        &[&id, "--exit-status", "--relay", &a.url, "--relay", &b.url],
    );
    let t = now();
    pause();
    w.send(&[&a, &b], &[w.status(&id, &me, "queued", "in line", t)]);
    pause();
    w.send(
        &[&a],
        &[w.status(&id, &me, "running", "act -j build", t + 1)],
    );
    pause();
    let out_url = blobs.put(b"build ok\n");
    let err_url = blobs.put(b"");
    let change = token_v4(&[40], "http://127.0.0.1:3338");
    let result = w.result(
        &id,
        &me,
        &ResultSpec {
            exit_code: 0,
            stdout: Some(out_url.clone()),
            stderr: Some(err_url.clone()),
            change: Some(change.clone()),
            duration: Some(12.5),
            at: Some(t + 2),
        },
    );
    w.send(&[&b], &[result]);
    let (code, stdout, stderr) = finish(watch);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.is_empty(),
        "human watch keeps stdout for data: {stdout}"
    );
    let q = stderr.find("queued").expect("queued shown");
    let r = stderr.find("running").expect("running shown");
    let s = stderr.rfind("success").expect("success shown");
    assert!(q < r && r < s, "transitions in order: {stderr}");
    assert!(
        stderr.contains("exit 0") && stderr.contains("12.5s"),
        "{stderr}"
    );
    assert!(stderr.contains(&out_url) && stderr.contains(&err_url));
    assert!(stderr.contains("change: 40 sat returned"), "{stderr}");
    assert!(!stderr.contains(&change), "change token redacted");
}

#[test]
fn watch_exit_status_follows_a_failure() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let id = dispatch(&env, &w.hex(), &[&relay], &[]);
    let me = env.keys.public_key().to_hex();
    let failing = ResultSpec {
        exit_code: 3,
        duration: Some(1.0),
        ..Default::default()
    };
    let watch = spawn_watch(&env, &[&id, "--exit-status", "--relay", &relay.url]);
    pause();
    w.send(&[&relay], &[w.status(&id, &me, "running", "", now())]);
    w.send(&[&relay], &[w.result(&id, &me, &failing)]);
    let (code, _, err) = finish(watch);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("failed") && err.contains("exit 3"), "{err}");

    // Without --exit-status a finished watch is a success of jobctl's own.
    let out = env
        .cmd()
        .args(["watch", &id, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn forged_result_from_another_key_is_ignored() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let forger = Keys::generate();
    let id = dispatch(&env, &w.hex(), &[&relay], &[]);
    let me = env.keys.public_key().to_hex();
    let ok = ResultSpec::default();
    publish(
        &forger,
        &[&relay],
        &[ScriptedWorker::result_by(&forger, &id, &me, &ok)],
    );
    publish(
        &forger,
        &[&relay],
        &[ScriptedWorker::status_by(
            &forger,
            &id,
            &me,
            "success",
            "trust me",
            now(),
        )],
    );
    let out = env
        .cmd()
        .args(["status", &id, "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(
        json(&out)[0]["state"],
        "pending",
        "forgeries change nothing"
    );

    // The real failure arrives: watch reports it despite the forged success.
    let watch = spawn_watch(&env, &[&id, "--exit-status", "--relay", &relay.url]);
    pause();
    let bad = ResultSpec {
        exit_code: 1,
        ..Default::default()
    };
    w.send(&[&relay], &[w.result(&id, &me, &bad)]);
    let (code, _, stderr) = finish(watch);
    assert_eq!(code, Some(1), "{stderr}");
}

#[test]
fn result_on_only_one_of_three_relays_is_found() {
    let env = TestEnv::new();
    let (a, b, c) = (TestRelay::start(), TestRelay::start(), TestRelay::start());
    let w = ScriptedWorker::new();
    let id = dispatch(&env, &w.hex(), &[&a, &b, &c], &[]);
    let me = env.keys.public_key().to_hex();
    w.send(&[&c], &[w.result(&id, &me, &ResultSpec::default())]);
    let out = env
        .cmd()
        .args(["status", &id, "--json"])
        .args(["--relay", &a.url, "--relay", &b.url, "--relay", &c.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v[0]["state"], "success");
    assert_eq!(v[0]["exit_code"], 0);

    // A watch started after the fact ends at once.
    let out = env
        .cmd()
        .args(["watch", &id, "--exit-status", "--timeout", "10s"])
        .args(["--relay", &a.url, "--relay", &b.url, "--relay", &c.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn out_of_order_and_unknown_statuses() {
    let env = TestEnv::new();
    let (a, b) = (TestRelay::start(), TestRelay::start());
    let w = ScriptedWorker::new();
    let id = dispatch(&env, &w.hex(), &[&a, &b], &[]);
    let me = env.keys.public_key().to_hex();
    let t = now();
    // Relay a has the newer status, relay b only the older one.
    w.send(&[&a], &[w.status(&id, &me, "running", "second", t + 5)]);
    w.send(&[&b], &[w.status(&id, &me, "queued", "first", t)]);
    let out = env
        .cmd()
        .args([
            "status", &id, "--json", "--relay", &b.url, "--relay", &a.url,
        ])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v[0]["state"], "running");
    assert_eq!(v[0]["message"], "second");

    // The show timeline is ordered by time whatever the arrival order.
    let out = env
        .cmd()
        .args(["show", &id, "--json", "--relay", &a.url, "--relay", &b.url])
        .output()
        .unwrap();
    let v = json(&out);
    let tl = v["timeline"].as_array().unwrap();
    assert_eq!(tl.len(), 2);
    assert_eq!(tl[0]["state"], "queued");
    assert_eq!(tl[1]["state"], "running");

    w.send(&[&a], &[w.status(&id, &me, "teleporting", "??", t + 9)]);
    let out = env
        .cmd()
        .args(["status", &id, "--relay", &a.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("unknown"));
    assert_eq!(stdout(&out), format!("{id} unknown"));
}

#[test]
fn logs_verify_content_addressed_bodies() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let blobs = BlobServer::start();
    let me = env.keys.public_key().to_hex();
    let good = dispatch(&env, &w.hex(), &[&relay], &[]);
    let body = b"line 1\nline 2\n";
    let url = blobs.put(body);
    let err_url = blobs.put(b"warnings here\n");
    let spec = ResultSpec {
        stdout: Some(url),
        stderr: Some(err_url),
        ..Default::default()
    };
    w.send(&[&relay], &[w.result(&good, &me, &spec)]);
    let out = env
        .cmd()
        .args(["logs", &good, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, body);
    let out = env
        .cmd()
        .args(["logs", &good, "--stderr", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"warnings here\n");

    // A body that does not match the hash in its URL: error, nothing printed.
    let bad = dispatch(&env, &w.hex(), &[&relay], &["--", "bad"]);
    let claimed = jobctl::logs::sha256_hex(b"the real log");
    let tampered = blobs.put_at(&format!("/{claimed}"), b"tampered log");
    let spec = ResultSpec {
        stdout: Some(tampered),
        ..Default::default()
    };
    w.send(&[&relay], &[w.result(&bad, &me, &spec)]);
    let out = env
        .cmd()
        .args(["logs", &bad, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing printed on a mismatch");
    assert!(stderr(&out).contains("integrity"), "{}", stderr(&out));

    // No result yet, and a 404.
    let pending = dispatch(&env, &w.hex(), &[&relay], &["--", "pending"]);
    let out = env
        .cmd()
        .args(["logs", &pending, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no result"), "{}", stderr(&out));
    let gone = dispatch(&env, &w.hex(), &[&relay], &["--", "gone"]);
    let spec = ResultSpec {
        stdout: Some(format!("{}/{}", blobs.base, "0".repeat(64))),
        ..Default::default()
    };
    w.send(&[&relay], &[w.result(&gone, &me, &spec)]);
    let out = env
        .cmd()
        .args(["logs", &gone, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("404"));
}

#[test]
fn list_pages_and_filters_over_200_jobs() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let (w1, w2) = (ScriptedWorker::new(), ScriptedWorker::new());
    let me = env.keys.public_key().to_hex();
    let base = now() - 10_000;
    let token = token_v4(&[21], "http://127.0.0.1:3338");
    // 200 jobs, one second apart; the newest is i = 199.
    let jobs: Vec<Event> = (0..200)
        .map(|i| {
            let w = if i % 2 == 0 { &w1 } else { &w2 };
            job_request(&env.keys, &w.hex(), "act", Some(&token), base + i)
        })
        .collect();
    publish(&env.keys, &[&relay], &jobs);
    // Every 4th job failed, the next succeeded, the next is running.
    let mut worker_events = Vec::new();
    for (i, j) in jobs.iter().enumerate() {
        let w = if i % 2 == 0 { &w1 } else { &w2 };
        let id = j.id.to_hex();
        match i % 4 {
            0 => worker_events.push((
                w,
                w.result(
                    &id,
                    &me,
                    &ResultSpec {
                        exit_code: 1,
                        duration: Some(3.0),
                        ..Default::default()
                    },
                ),
            )),
            1 => worker_events.push((
                w,
                w.result(
                    &id,
                    &me,
                    &ResultSpec {
                        exit_code: 0,
                        duration: Some(2.0),
                        ..Default::default()
                    },
                ),
            )),
            2 => worker_events.push((w, w.status(&id, &me, "running", "", base + 300))),
            _ => {}
        }
    }
    for w in [&w1, &w2] {
        let mine: Vec<Event> = worker_events
            .iter()
            .filter(|(x, _)| x.hex() == w.hex())
            .map(|(_, e)| e.clone())
            .collect();
        w.send(&[&relay], &mine);
    }
    // Someone else's job is not listed.
    let other = Keys::generate();
    publish(
        &other,
        &[&relay],
        &[job_request(&other, &w1.hex(), "act", None, base + 500)],
    );

    let list = |extra: &[&str]| -> Vec<Value> {
        let out = env
            .cmd()
            .args(["list", "--json", "--relay", &relay.url])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json(&out).as_array().unwrap().clone()
    };
    let page1 = list(&["--limit", "50"]);
    assert_eq!(page1.len(), 50);
    assert_eq!(page1[0]["id"], jobs[199].id.to_hex());
    assert_eq!(page1[49]["id"], jobs[150].id.to_hex());
    assert_eq!(page1[0]["amount"], 21);
    // Page 2 by --until of the last row (the human output prints the hint).
    let until = (page1[49]["created_at"].as_u64().unwrap() - 1).to_string();
    let page2 = list(&["--limit", "50", "--until", &until]);
    assert_eq!(page2.len(), 50);
    assert_eq!(page2[0]["id"], jobs[149].id.to_hex());
    let out = env
        .cmd()
        .args(["list", "--limit", "50", "--relay", &relay.url])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains(&format!("--until {until}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).lines().count(), 50, "ids on stdout");

    let all = list(&["--limit", "500"]);
    assert_eq!(all.len(), 200);
    let count = |s: &str| all.iter().filter(|v| v["state"] == s).count();
    assert_eq!(
        (
            count("failed"),
            count("success"),
            count("running"),
            count("pending")
        ),
        (50, 50, 50, 50)
    );

    let failed = list(&["--limit", "500", "--status", "failed"]);
    assert_eq!(failed.len(), 50);
    assert!(failed.iter().all(|v| v["exit_code"] == 1));
    let two = list(&["--limit", "500", "--status", "failed,success"]);
    assert_eq!(two.len(), 100);
    let by_worker = list(&[
        "--limit",
        "500",
        "--worker",
        &w2.keys.public_key().to_bech32().unwrap(),
    ]);
    assert_eq!(by_worker.len(), 100);
    assert!(by_worker.iter().all(|v| v["worker"] == w2.hex()));
    let recent = list(&["--limit", "500", "--since", &(base + 190).to_string()]);
    assert_eq!(recent.len(), 10);
    let theirs = list(&["--limit", "500", "--author", &other.public_key().to_hex()]);
    assert_eq!(theirs.len(), 1);

    let out = env
        .cmd()
        .args(["list", "--status", "exploded", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn workers_online_offline_and_mint_filter() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let (fresh, old, free) = (
        ScriptedWorker::new(),
        ScriptedWorker::new(),
        ScriptedWorker::new(),
    );
    let mint = "http://127.0.0.1:3338";
    fresh.send(&[&relay], &[fresh.ad("fresh", Some(mint), now() - 30)]);
    old.send(
        &[&relay],
        &[old.ad("old", Some("https://other.mint"), now() - 600)],
    );
    free.send(&[&relay], &[free.ad("free", None, now() - 10)]);
    let run = |extra: &[&str]| -> Vec<Value> {
        let out = env
            .cmd()
            .args(["workers", "--json", "--relay", &relay.url])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json(&out).as_array().unwrap().clone()
    };
    let all = run(&[]);
    assert_eq!(all.len(), 3);
    let by = |n: &str| all.iter().find(|w| w["name"] == n).unwrap().clone();
    assert_eq!(by("fresh")["online"], true);
    assert_eq!(by("old")["online"], false);
    assert_eq!(by("fresh")["prices"][0]["rate"], 1.0);
    assert_eq!(by("fresh")["prices"][0]["mint"], mint);
    assert!(by("free")["prices"].as_array().unwrap().is_empty());
    let online: Vec<String> = run(&["--online"])
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(online.len(), 2);
    assert!(!online.contains(&"old".to_string()));
    let m = run(&["--mint", mint]);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["name"], "fresh");

    // A newer advertisement replaces the old one.
    old.send(
        &[&relay],
        &[old.ad("old-renamed", Some("https://other.mint"), now())],
    );
    let all = run(&["--online"]);
    assert!(all.iter().any(|w| w["name"] == "old-renamed"));

    let out = env
        .cmd()
        .args(["workers", "--relay", &relay.url])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("fresh") && err.contains("0.2.61") && err.contains("1 sat/second"),
        "{err}"
    );
    assert!(err.contains("1/2"), "queue depth of max: {err}");
    assert_eq!(stdout(&out).lines().count(), 3);
}

#[test]
fn watch_times_out_with_124_and_streams_json() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let id = dispatch(&env, &w.hex(), &[&relay], &[]);
    let me = env.keys.public_key().to_hex();
    w.send(&[&relay], &[w.status(&id, &me, "queued", "", now())]);
    let out = env
        .cmd()
        .args([
            "watch",
            &id,
            "--exit-status",
            "--timeout",
            "1s",
            "--relay",
            &relay.url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(stderr(&out).contains("timed out"));

    let watch = spawn_watch(&env, &[&id, "--json", "--relay", &relay.url]);
    pause();
    w.send(&[&relay], &[w.status(&id, &me, "running", "go", now() + 1)]);
    pause();
    w.send(
        &[&relay],
        &[w.result(
            &id,
            &me,
            &ResultSpec {
                at: Some(now() + 2),
                ..Default::default()
            },
        )],
    );
    let (code, stdout, stderr) = finish(watch);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["state"], "queued");
    assert_eq!(lines[1]["state"], "running");
    assert_eq!(lines[2]["type"], "result");
    assert_eq!(lines[2]["exit_code"], 0);
    assert!(lines.iter().all(|l| l["job"] == id.as_str()));
}

#[test]
fn rerun_pipes_into_watch_via_stdin_and_nevent_hints() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let me = env.keys.public_key().to_hex();
    let out = env
        .rerun_unpaid(&w.hex(), &[&relay.url])
        .arg("--json")
        .output()
        .unwrap();
    let v = json(&out);
    let id = v["id"].as_str().unwrap().to_string();
    let nevent = v["nevent"].as_str().unwrap().to_string();
    w.send(&[&relay], &[w.result(&id, &me, &ResultSpec::default())]);
    // `-` reads ids from stdin; no --relay: the configured relays come from the env.
    let out = env
        .cmd()
        .args(["watch", "-", "--exit-status", "--timeout", "10s"])
        .env("JOBCTL_RELAYS", &relay.url)
        .write_stdin(format!("{id}\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // An nevent carries its relays: no relay configured at all.
    let out = env
        .cmd()
        .args(["status", &nevent, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)[0]["state"], "success");
}

#[test]
fn unknown_jobs_and_bad_refs() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let missing = EventId::all_zeros().to_hex();
    let out = env
        .cmd()
        .args(["watch", &missing, "--timeout", "5s", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"));
    let out = env
        .cmd()
        .args(["status", &missing, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    for cmd in ["watch", "status", "show", "logs"] {
        let out = env
            .cmd()
            .args([cmd, "not-an-id", "--relay", &relay.url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(stderr(&out).starts_with("error: "), "{cmd}");
    }
}

#[test]
fn a_dead_relay_does_not_block_reads() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let hole = Blackhole::new();
    let w = ScriptedWorker::new();
    let id = dispatch(&env, &w.hex(), &[&relay], &[]);
    let started = std::time::Instant::now();
    let out = env
        .cmd()
        .args(["status", &id, "--json", "--timeout", "2s"])
        .args(["--relay", &hole.url, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)[0]["state"], "pending");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn show_redacts_payment_and_secret_values() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    w.send(
        &[&relay],
        &[w.ad("builder-1", Some("http://127.0.0.1:3338"), now())],
    );
    let token = token_v3(&[8, 2], "http://127.0.0.1:3338");
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args([
            "--token",
            &token,
            "--env",
            "MODE=fast",
            "--secret",
            "API_KEY=hunter2",
            "--",
            "-j",
            "test",
        ])
        .output()
        .unwrap();
    let id = stdout(&out);
    let out = env
        .cmd()
        .args(["show", &id, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("builder-1"), "worker's advertised name: {err}");
    assert!(err.contains("act -j test"));
    assert!(err.contains("MODE") && err.contains("API_KEY"));
    assert!(!err.contains("hunter2"));
    assert!(err.contains("10 sat") && !err.contains(&token));
    assert!(err.contains("pending"));
    let out = env
        .cmd()
        .args(["show", &id, "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["worker"]["name"], "builder-1");
    assert_eq!(v["payment"]["amount"], 10);
    assert_eq!(v["secret_keys"][0], "API_KEY");
    assert!(!out.stdout.windows(7).any(|w| w == b"hunter2"));
}
