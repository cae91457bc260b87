//! Reading "today's Loom": events shaped as today's clients and workers
//! (Budabit's pipelines, Hive CI, swarmstr) send them, published by a
//! scripted worker (a real key) to real loopback relays, and read back by
//! the built binary: status words, `queue_position`, the result's `error`
//! reason, inline output, `duration`, both price layouts, unnamed ads,
//! access-control fields and NIP-51 freelists.

mod common;

use common::*;
use nostr_sdk::prelude::*;
use serde_json::Value;

fn tag(name: &str, values: &[&str]) -> Tag {
    Tag::custom(
        TagKind::Custom(name.to_string().into()),
        values.iter().map(|v| v.to_string()),
    )
}

/// A status the way swarmstr/Budabit workers send it, with extra tags.
fn status(w: &ScriptedWorker, job: &str, me: &str, word: &str, extra: &[Tag], at: u64) -> Event {
    let mut tags = vec![
        tag("d", &[job]),
        tag("e", &[job]),
        tag("p", &[me]),
        tag("status", &[word]),
    ];
    tags.extend(extra.iter().cloned());
    EventBuilder::new(Kind::Custom(30100), format!("worker says {word}"))
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(&w.keys)
        .expect("sign")
}

/// A result with exactly the given tags (plus `e` and `p`).
fn result(w: &ScriptedWorker, job: &str, me: &str, extra: &[Tag]) -> Event {
    let mut tags = vec![tag("e", &[job]), tag("p", &[me])];
    tags.extend(extra.iter().cloned());
    EventBuilder::new(Kind::Custom(5101), "")
        .tags(tags)
        .sign_with_keys(&w.keys)
        .expect("sign")
}

/// An advertisement with the given content and tags.
fn ad(w: &ScriptedWorker, content: &str, tags: &[Tag]) -> Event {
    EventBuilder::new(Kind::Custom(10100), content)
        .tags(tags.to_vec())
        .sign_with_keys(&w.keys)
        .expect("sign")
}

fn run(env: &TestEnv, args: &[&str]) -> std::process::Output {
    env.cmd().args(args).output().expect("run")
}

#[test]
fn every_status_word_maps_to_a_state() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let me = env.keys.public_key().to_hex();
    let t = now();
    // word, extra tags, expected state, reason
    let cases: Vec<(&str, Vec<Tag>, &str, Option<&str>)> = vec![
        ("completed", vec![], "success", None),
        ("timeout", vec![], "failed", Some("timed out")),
        ("failure", vec![], "failed", None),
        ("in_progress", vec![], "running", None),
        ("pending", vec![], "pending", None),
        ("skipped", vec![], "skipped", None),
        (
            "error",
            vec![tag("error", &["out of disk"])],
            "error",
            Some("out of disk"),
        ),
        (
            "queued",
            vec![tag("queue_position", &["3"])],
            "queued",
            None,
        ),
    ];
    let mut ids = Vec::new();
    for (word, extra, _, _) in &cases {
        // Distinct arguments: the same request in the same second is one job.
        let id = dispatch(&env, &w.hex(), &[&relay], &["--", word]);
        w.send(&[&relay], &[status(&w, &id, &me, word, extra, t)]);
        ids.push(id);
    }
    let mut args = vec!["status", "--json", "--relay", &relay.url];
    args.extend(ids.iter().map(String::as_str));
    let out = run(&env, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    for (i, (word, _, state, reason)) in cases.iter().enumerate() {
        let j = v
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == ids[i].as_str())
            .expect("job in output");
        assert_eq!(j["state"], *state, "{word}: {j}");
        assert_eq!(j["reason"].as_str(), *reason, "{word}: {j}");
    }
    let queued = &v.as_array().unwrap()[7];
    assert_eq!(queued["queue_position"], 3);

    // The human table carries the reason and the queue position.
    let mut args = vec!["status", "--relay", &relay.url];
    args.extend(ids.iter().map(String::as_str));
    let out = run(&env, &args);
    let err = stderr(&out);
    assert!(
        err.contains("timed out") && err.contains("#3 in queue"),
        "{err}"
    );
    assert!(err.contains("skipped"), "{err}");
    assert!(stdout(&out).contains(&format!("{} skipped", ids[5])));

    // `list` (all of the user's jobs) says the same.
    let out = run(&env, &["list", "--json", "--relay", &relay.url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let l = json(&out);
    let of = |id: &str| {
        l.as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .expect("listed")
            .clone()
    };
    assert_eq!(of(&ids[1])["reason"], "timed out");
    assert_eq!(of(&ids[5])["state"], "skipped");
    assert_eq!(of(&ids[7])["queue_position"], 3);
    // `--status skipped` is a state to filter on.
    let out = run(
        &env,
        &[
            "list", "--json", "--status", "skipped", "--relay", &relay.url,
        ],
    );
    assert_eq!(json(&out).as_array().unwrap().len(), 1);

    // `show` gives the queue position, human and JSON.
    let out = run(&env, &["show", &ids[7], "--relay", &relay.url]);
    assert!(stderr(&out).contains("queue    #3"), "{}", stderr(&out));
    assert!(stderr(&out).contains("#3 in queue"), "{}", stderr(&out));
    let out = run(&env, &["show", &ids[7], "--json", "--relay", &relay.url]);
    assert_eq!(json(&out)["queue_position"], 3);
    assert_eq!(json(&out)["timeline"][0]["queue_position"], 3);
}

#[test]
fn watch_exit_status_on_completed_timeout_and_skipped() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let me = env.keys.public_key().to_hex();
    let watch = |word: &str, json: bool| {
        let id = dispatch(&env, &w.hex(), &[&relay], &["--", word, &json.to_string()]);
        w.send(&[&relay], &[status(&w, &id, &me, word, &[], now())]);
        let mut args = vec!["watch", &id, "--exit-status", "--relay", &relay.url];
        if json {
            args.push("--json");
        }
        let out = run(&env, &args);
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, _, err) = watch("completed", false);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("success"), "{err}");

    let (code, _, err) = watch("timeout", false);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("failed") && err.contains("reason: timed out"),
        "{err}"
    );
    let (code, out, err) = watch("timeout", true);
    assert_eq!(code, Some(1), "{err}");
    let line: Value = serde_json::from_str(out.lines().next().expect("a line")).expect("json");
    assert_eq!(line["state"], "failed");
    assert_eq!(line["status"], "timeout");
    assert_eq!(line["reason"], "timed out");

    // Skipped is terminal: the watch ends (not a success for --exit-status).
    let (code, _, err) = watch("skipped", false);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("skipped"), "{err}");
}

#[test]
fn result_error_is_the_reason_everywhere() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let me = env.keys.public_key().to_hex();
    let id = dispatch(&env, &w.hex(), &[&relay], &[]);
    let why = "Pubkey not whitelisted for this worker";
    w.send(
        &[&relay],
        &[result(
            &w,
            &id,
            &me,
            &[tag("success", &["false"]), tag("error", &[why])],
        )],
    );
    let r = &relay.url;
    let out = run(&env, &["watch", &id, "--relay", r]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("reason: {why}")),
        "{}",
        stderr(&out)
    );
    let out = run(&env, &["watch", &id, "--json", "--relay", r]);
    let line: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(
        (line["reason"].as_str(), line["error"].as_str()),
        (Some(why), Some(why))
    );

    let out = run(&env, &["status", &id, "--json", "--relay", r]);
    assert_eq!(json(&out)[0]["state"], "failed");
    assert_eq!(json(&out)[0]["reason"], why);
    let out = run(&env, &["status", &id, "--relay", r]);
    assert!(
        stderr(&out).contains("Pubkey not whitelisted"),
        "{}",
        stderr(&out)
    );

    let out = run(&env, &["show", &id, "--json", "--relay", r]);
    let v = json(&out);
    assert_eq!(v["reason"], why);
    assert_eq!(v["result"]["error"], why);
    let out = run(&env, &["show", &id, "--relay", r]);
    assert!(
        stderr(&out).contains(&format!("reason   {why}")),
        "{}",
        stderr(&out)
    );

    let out = run(&env, &["list", "--json", "--relay", r]);
    assert_eq!(json(&out)[0]["reason"], why);
}

#[test]
fn inline_output_is_printed_by_logs_and_marked_unverifiable() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let me = env.keys.public_key().to_hex();
    let id = dispatch(&env, &w.hex(), &[&relay], &[]);
    w.send(
        &[&relay],
        &[result(
            &w,
            &id,
            &me,
            &[
                tag("success", &["true"]),
                tag("exit_code", &["0"]),
                tag("stdout", &["hello\nworld\n"]),
                tag("stderr", &["a warning"]),
                tag("duration", &["7.5"]),
            ],
        )],
    );
    let r = &relay.url;
    let out = run(&env, &["logs", &id, "--relay", r]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\nworld\n");
    assert!(stderr(&out).contains("unverifiable"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = run(&env, &["logs", &id, "--stderr", "--relay", r]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a warning");

    // watch/show read the duration and point at `logs` for inline output.
    let out = run(&env, &["watch", &id, "--exit-status", "--relay", r]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("7.5s") && err.contains("inline, 12 bytes"),
        "{err}"
    );
    let out = run(&env, &["status", &id, "--json", "--relay", r]);
    assert_eq!(json(&out)[0]["duration"], 7.5);
}

#[test]
fn workers_read_both_price_layouts_unnamed_ads_and_access_fields() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let (budabit, swarm, unnamed) = (
        ScriptedWorker::new(),
        ScriptedWorker::new(),
        ScriptedWorker::new(),
    );
    let mint = "http://127.0.0.1:3338";
    budabit.send(
        &[&relay],
        &[ad(
            &budabit,
            r#"{"name":"budabit-w"}"#,
            &[tag("price", &["second", "2", "sat", mint])],
        )],
    );
    swarm.send(
        &[&relay],
        &[ad(
            &swarm,
            r#"{"name":"swarm-w","is_whitelisted":true,"freelist_timeout":"900"}"#,
            &[
                tag("price", &["https://mint.example", "3", "sat"]),
                tag("whitelist_event", &["30000:abcd:allowed"]),
            ],
        )],
    );
    unnamed.send(
        &[&relay],
        &[ad(&unnamed, r#"{"description":"no name here"}"#, &[])],
    );
    let out = run(&env, &["workers", "--json", "--relay", &relay.url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = json(&out).as_array().unwrap().clone();
    assert_eq!(all.len(), 3, "the unnamed ad is not dropped");
    let by = |pk: &str| all.iter().find(|w| w["pubkey"] == pk).unwrap().clone();
    let b = by(&budabit.hex());
    assert_eq!(
        (
            &b["prices"][0]["rate"],
            &b["prices"][0]["mint"],
            &b["prices"][0]["period"]
        ),
        (
            &Value::from(2.0),
            &Value::from(mint),
            &Value::from("second")
        )
    );
    let s = by(&swarm.hex());
    assert_eq!(s["prices"][0]["mint"], "https://mint.example");
    assert_eq!(s["prices"][0]["rate"], 3.0);
    assert_eq!(s["prices"][0]["unit"], "sat");
    assert_eq!(s["access"]["is_whitelisted"], true);
    assert_eq!(s["access"]["whitelist_event"], "30000:abcd:allowed");
    assert_eq!(s["access"]["freelist_timeout"], 900);
    let u = by(&unnamed.hex());
    assert_eq!(u["unnamed"], true);
    assert_eq!(u["description"], "no name here");

    // --mint finds the swarmstr-layout worker by its mint.
    let out = run(
        &env,
        &[
            "workers",
            "--json",
            "--mint",
            "https://mint.example/",
            "--relay",
            &relay.url,
        ],
    );
    assert_eq!(json(&out)[0]["pubkey"], swarm.hex());

    let out = run(&env, &["workers", "--relay", &relay.url]);
    let err = stderr(&out);
    assert!(err.contains("(unnamed)"), "{err}");
    assert!(
        err.contains("3 sat") && err.contains("2 sat/second"),
        "{err}"
    );
    assert!(err.contains("whitelist"), "{err}");
}

/// A NIP-51 follow-set style list (kind 30000) naming `members`.
fn freelist(w: &ScriptedWorker, d: &str, members: &[&str]) -> Event {
    let mut tags = vec![tag("d", &[d])];
    tags.extend(members.iter().map(|m| tag("p", &[m])));
    EventBuilder::new(Kind::Custom(30000), "")
        .tags(tags)
        .sign_with_keys(&w.keys)
        .expect("sign")
}

#[test]
fn freelist_makes_a_worker_free_for_you_and_rerun_needs_no_unpaid() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let me = env.keys.public_key().to_hex();
    let other = Keys::generate().public_key().to_hex();
    let (kpd, naddr, nevent, stranger) = (
        ScriptedWorker::new(),
        ScriptedWorker::new(),
        ScriptedWorker::new(),
        ScriptedWorker::new(),
    );
    let mint = "http://127.0.0.1:3338";
    let price = tag("price", &["second", "1", "sat", mint]);

    // `kind:pubkey:d` in a tag.
    kpd.send(&[&relay], &[freelist(&kpd, "free", &[&other, &me])]);
    let pointer = format!("30000:{}:free", kpd.hex());
    kpd.send(
        &[&relay],
        &[ad(
            &kpd,
            r#"{"name":"kpd"}"#,
            &[
                price.clone(),
                tag("freelist_event", &[&pointer]),
                tag("freelist_timeout", &["600"]),
            ],
        )],
    );
    // naddr in the content.
    naddr.send(&[&relay], &[freelist(&naddr, "loom", &[&me])]);
    let coord = Coordinate::new(Kind::Custom(30000), naddr.keys.public_key()).identifier("loom");
    let na = Nip19Coordinate::new(coord, Vec::<RelayUrl>::new())
        .to_bech32()
        .unwrap();
    naddr.send(
        &[&relay],
        &[ad(
            &naddr,
            &format!(r#"{{"name":"naddr","freelist_event":"{na}"}}"#),
            std::slice::from_ref(&price),
        )],
    );
    // nevent in a tag.
    let list = freelist(&nevent, "x", &[&me]);
    nevent.send(&[&relay], std::slice::from_ref(&list));
    let ne = Nip19Event::new(list.id).to_bech32().unwrap();
    nevent.send(
        &[&relay],
        &[ad(
            &nevent,
            r#"{"name":"nevent"}"#,
            &[price.clone(), tag("freelist_event", &[&ne])],
        )],
    );
    // A freelist without us.
    stranger.send(&[&relay], &[freelist(&stranger, "free", &[&other])]);
    let sp = format!("30000:{}:free", stranger.hex());
    stranger.send(
        &[&relay],
        &[ad(
            &stranger,
            r#"{"name":"stranger"}"#,
            &[price.clone(), tag("freelist_event", &[&sp])],
        )],
    );

    let out = run(&env, &["workers", "--json", "--relay", &relay.url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = json(&out).as_array().unwrap().clone();
    let free = |name: &str| {
        all.iter()
            .find(|w| w["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"))["free_for_me"]
            .clone()
    };
    assert_eq!(free("kpd"), true);
    assert_eq!(free("naddr"), true);
    assert_eq!(free("nevent"), true);
    assert_eq!(free("stranger"), false);
    let out = run(&env, &["workers", "--relay", &relay.url]);
    assert!(stderr(&out).contains("free"), "{}", stderr(&out));

    // rerun without a token and without --unpaid: fine for a freelist
    // worker, says why, and publishes a job without a payment tag.
    let out = env.rerun(&kpd.hex(), &[&relay.url]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("freelist") && err.contains("600 s"), "{err}");
    let id = EventId::from_hex(stdout(&out).lines().last().unwrap()).unwrap();
    let published = relay.query(Filter::new().id(id));
    assert_eq!(published.len(), 1);
    assert!(tags(&published[0]).iter().all(|t| t[0] != "payment"));

    // Not on the list: the usual refusal, nothing published.
    let before = relay.query(Filter::new().kind(Kind::Custom(5100))).len();
    let out = env
        .rerun(&stranger.hex(), &[&relay.url])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no payment token"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        relay.query(Filter::new().kind(Kind::Custom(5100))).len(),
        before
    );
}

#[test]
fn p_self_warns_in_one_line() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let out = env
        .rerun_unpaid(&w.hex(), &[&relay.url])
        .args(["--p", "self"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("--p self")).collect();
    assert_eq!(warnings.len(), 1, "{}", stderr(&out));
    assert!(warnings[0].starts_with("warning:") && warnings[0].contains("`p` tag alone"));
}

#[test]
fn a_live_watch_shows_the_queue_position_then_the_timeout() {
    use std::io::Read;
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let me = env.keys.public_key().to_hex();
    let id = dispatch(&env, &w.hex(), &[&relay], &[]);
    let mut child = env
        .std_cmd()
        .args([
            "-v",
            "watch",
            &id,
            "--json",
            "--exit-status",
            "--relay",
            &relay.url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let mut pipe = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            if all.contains("watching") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(30))
        .expect("watch subscribed");
    let t = now();
    w.send(
        &[&relay],
        &[status(
            &w,
            &id,
            &me,
            "queued",
            &[tag("queue_position", &["2"])],
            t,
        )],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    w.send(&[&relay], &[status(&w, &id, &me, "timeout", &[], t + 1)]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let code = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        assert!(std::time::Instant::now() < deadline, "watch did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert_eq!(code, Some(1), "{out}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.first().expect("a line")["queue_position"], 2, "{out}");
    let last = lines.last().expect("a line");
    assert_eq!(
        (last["state"].as_str(), last["reason"].as_str()),
        (Some("failed"), Some("timed out"))
    );
}
