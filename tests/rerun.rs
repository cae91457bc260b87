//! `jobctl rerun` end to end: the built binary against real relays on
//! loopback, asserting on what the relays stored.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nostr_relay_builder::prelude::RelayBuilder;
use nostr_sdk::prelude::*;

const MINT: &str = "http://127.0.0.1:3338";

fn worker() -> Keys {
    Keys::generate()
}

#[test]
fn publishes_the_exact_tags_signed_by_the_user() {
    let env = TestEnv::new();
    let (a, b) = (TestRelay::start(), TestRelay::start());
    let w = worker();
    let token = token_v3(&[64, 32, 4], MINT);
    let out = env
        .rerun(&w.public_key().to_bech32().unwrap(), &[&a.url, &b.url])
        .args(["--", "--help"])
        .env("JOBCTL_TOKEN", &token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out);
    assert_eq!(id.len(), 64, "stdout is only the event id: {id:?}");

    for relay in [&a, &b] {
        let events = relay.events();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.id.to_hex(), id);
        assert_eq!(e.kind, Kind::Custom(5100));
        assert_eq!(e.pubkey, env.keys.public_key());
        assert!(e.verify().is_ok());
        assert_eq!(e.content, "");
        let wh = w.public_key().to_hex();
        assert_eq!(
            tags(e),
            vec![
                vec!["p".to_string(), wh.clone()],
                vec!["worker".to_string(), wh],
                vec!["cmd".to_string(), "act".to_string()],
                vec!["args".to_string(), "--help".to_string()],
                vec!["payment".to_string(), token.clone()],
            ]
        );
    }
    let err = stderr(&out);
    assert!(
        !err.contains(&token),
        "the token must be redacted on stderr"
    );
    assert!(err.contains("100 sat"), "{err}");
    assert!(err.contains("accepted"), "{err}");
}

#[test]
fn all_optional_tags_in_order_and_secrets_encrypted_to_the_worker() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = worker();
    let parent = EventId::all_zeros().to_hex();
    let token = token_v4(&[8], MINT);
    let out = env
        .rerun(&w.public_key().to_hex(), &[&relay.url])
        .args(["--token", &token, "--cmd", "bash", "--run", &parent])
        .args([
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--secret",
            "TOKEN=hunter2",
        ])
        .args(["--secret", "FROM_ENV"])
        .env("FROM_ENV", "s3cret")
        .args(["--", "-c", "echo hi", ""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let e = &relay.events()[0];
    let t = tags(e);
    let names: Vec<&str> = t.iter().map(|t| t[0].as_str()).collect();
    assert_eq!(
        names,
        ["p", "worker", "cmd", "args", "payment", "e", "env", "env", "secret", "secret"]
    );
    assert_eq!(t[2], ["cmd", "bash"]);
    assert_eq!(t[3], ["args", "-c", "echo hi", ""]);
    assert_eq!(t[5], ["e", parent.as_str()]);
    assert_eq!(t[6], ["env", "A", "1"]);
    assert_eq!(t[7], ["env", "B", "x=y"]);
    assert_eq!(t[8][1], "TOKEN");
    let raw = e.as_json();
    assert!(!raw.contains("hunter2") && !raw.contains("s3cret"));
    let plain = nip44::decrypt(w.secret_key(), &env.keys.public_key(), &t[8][2]).unwrap();
    assert_eq!(plain, "hunter2");
    let plain = nip44::decrypt(w.secret_key(), &env.keys.public_key(), &t[9][2]).unwrap();
    assert_eq!(plain, "s3cret");
}

#[test]
fn unpaid_job_has_no_payment_tag_and_p_tag_modes() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = worker();
    let wh = w.public_key().to_hex();
    let out = env
        .rerun_unpaid(&wh, &[&relay.url])
        .args(["--p", "self"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = tags(&relay.events()[0]);
    assert_eq!(t[0], ["p".to_string(), env.keys.public_key().to_hex()]);
    assert_eq!(t[1], ["worker".to_string(), wh]);
    assert_eq!(t[3], ["args"]);
    assert!(t.iter().all(|t| t[0] != "payment"));
}

#[test]
fn rejecting_relay_reports_its_reason_while_others_accept() {
    let env = TestEnv::new();
    let good = TestRelay::start();
    let bad = TestRelay::rejecting("you are not on the allow list");
    let out = env
        .rerun_unpaid(&worker().public_key().to_hex(), &[&good.url, &bad.url])
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let relays = v["relays"].as_array().unwrap();
    assert_eq!(relays.len(), 2);
    assert_eq!(relays[0]["url"], good.url.as_str());
    assert_eq!(relays[0]["status"], "accepted");
    assert_eq!(relays[1]["status"], "rejected");
    assert_eq!(
        relays[1]["message"],
        "blocked: you are not on the allow list"
    );
    assert!(relays[1]["latency_ms"].is_u64());
    assert_eq!(good.events().len(), 1);
    assert_eq!(bad.events().len(), 0);

    // The same in table form on stderr, with the id alone on stdout.
    let out = env
        .rerun_unpaid(&worker().public_key().to_hex(), &[&good.url, &bad.url])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("rejected") && err.contains("blocked: you are not on the allow list"));
    assert!(err.contains("accepted by 1/2 relays"), "{err}");
    assert_eq!(stdout(&out).len(), 64);
}

#[test]
fn min_accept_not_reached_exits_1() {
    let env = TestEnv::new();
    let good = TestRelay::start();
    let bad = TestRelay::rejecting("no");
    let out = env
        .rerun_unpaid(&worker().public_key().to_hex(), &[&good.url, &bad.url])
        .args(["--min-accept", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("NOT published"));
}

#[test]
fn dead_relays_fail_within_the_timeout() {
    let env = TestEnv::new();
    let good = TestRelay::start();
    let closed = ClosedPort::new();
    let hole = Blackhole::new();
    let started = Instant::now();
    let out = env
        .rerun_unpaid(
            &worker().public_key().to_hex(),
            &[&good.url, &closed.url, &hole.url],
        )
        .args(["--json", "--timeout", "1500ms"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Bounded by --timeout, with generous room for process start on a busy machine.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let v = json(&out);
    let r = v["relays"].as_array().unwrap();
    assert_eq!(r[0]["status"], "accepted");
    assert_eq!(r[1]["status"], "failed");
    assert!(
        r[1]["message"].as_str().unwrap().contains("connect"),
        "{}",
        r[1]
    );
    assert_eq!(r[2]["status"], "failed");
    assert!(
        r[2]["message"].as_str().unwrap().contains("timed out"),
        "{}",
        r[2]
    );
    assert_eq!(v["accepted"], 1);
}

#[test]
fn every_relay_down_exits_1() {
    let env = TestEnv::new();
    let closed = ClosedPort::new();
    let out = env
        .rerun_unpaid(&worker().public_key().to_hex(), &[&closed.url])
        .args(["--timeout", "2s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("failed"));
}

#[test]
fn nip42_relay_accepts_after_auth() {
    let env = TestEnv::new();
    let relay = TestRelay::nip42();
    let out = env
        .rerun_unpaid(&worker().public_key().to_hex(), &[&relay.url])
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["relays"][0]["status"], "accepted");
    let events = relay.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].pubkey, env.keys.public_key());
}

#[test]
fn rate_limited_relay_is_reported_as_rejected() {
    let env = TestEnv::new();
    let relay = TestRelay::with(RelayBuilder::default().write_policy(RateLimitPerAuthor::new(1)));
    let w = worker().public_key().to_hex();
    // Two different jobs (identical ones signed in one second share an id).
    let run = |arg: &str| {
        env.rerun_unpaid(&w, &[&relay.url])
            .args(["--json", "--", arg])
            .output()
            .unwrap()
    };
    let first = run("one");
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = run("two");
    assert_eq!(second.status.code(), Some(1));
    let v = json(&second);
    assert_eq!(v["relays"][0]["status"], "rejected");
    assert!(v["relays"][0]["message"]
        .as_str()
        .unwrap()
        .contains("rate-limited: slow down"));
    assert_eq!(relay.events().len(), 1);
}

#[test]
fn dry_run_prints_the_signed_event_and_publishes_nothing() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let token = token_v4(&[16], MINT);
    let out = env
        .rerun(&worker().public_key().to_hex(), &[&relay.url])
        .args(["--dry-run", "--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let event = Event::from_json(stdout(&out)).expect("signed event JSON");
    assert!(event.verify().is_ok());
    assert_eq!(event.pubkey, env.keys.public_key());
    assert_eq!(event.kind, Kind::Custom(5100));
    assert!(relay.events().is_empty());
}

#[test]
fn json_output_shape() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let token = token_v3(&[2, 8], MINT);
    let out = env
        .rerun(&worker().public_key().to_hex(), &[&relay.url])
        .args(["--json", "--token", &token, "--no-check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).is_empty(),
        "--json keeps stderr quiet: {}",
        stderr(&out)
    );
    let v = json(&out);
    let id = v["id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert!(v["nevent"].as_str().unwrap().starts_with("nevent1"));
    let nev = Nip19Event::from_bech32(v["nevent"].as_str().unwrap()).unwrap();
    assert_eq!(nev.event_id.to_hex(), id);
    assert_eq!(nev.relays.len(), 1);
    assert_eq!(v["event"]["id"], id);
    assert_eq!(v["event"]["kind"], 5100);
    assert!(v["event"]["sig"].is_string());
    assert_eq!(v["payment"]["amount"], 10);
    assert_eq!(v["payment"]["unit"], "sat");
    let r = &v["relays"][0];
    for k in ["url", "status", "message", "latency_ms"] {
        assert!(r.get(k).is_some(), "relay entry has {k}");
    }
}

#[test]
fn token_from_stdin() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let token = token_v4(&[1], MINT);
    let out = env
        .rerun(&worker().public_key().to_hex(), &[&relay.url])
        .args(["--token", "-"])
        .write_stdin(format!("{token}\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tags(&relay.events()[0])[4], ["payment".to_string(), token]);
}

/// Every class of bad input: exit 2, one line on stderr, nothing stored.
#[test]
fn bad_input_exits_2_and_publishes_nothing() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = worker().public_key().to_hex();
    let tok = token_v4(&[4], MINT);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("malformed token", vec!["--token", "cashuAnot-a-token"]),
        ("not a cashu token", vec!["--token", "hello"]),
        ("no token", vec![]),
        ("bad worker", vec!["--token", &tok, "--worker", "npub1nope"]),
        (
            "nsec as worker",
            vec!["--token", &tok, "--worker", "nsec1abc"],
        ),
        (
            "bad relay",
            vec!["--token", &tok, "--relay", "http://127.0.0.1:1"],
        ),
        ("bad env", vec!["--token", &tok, "--env", "NOEQUALS"]),
        ("bad env key", vec!["--token", &tok, "--env", "1X=2"]),
        ("bad secret", vec!["--token", &tok, "--secret", "=v"]),
        (
            "unset secret",
            vec!["--token", &tok, "--secret", "NOT_SET_ANYWHERE"],
        ),
        ("bad run id", vec!["--token", &tok, "--run", "xyz"]),
        ("bad p", vec!["--token", &tok, "--p", "everyone"]),
        ("bad timeout", vec!["--token", &tok, "--timeout", "soon"]),
        (
            "zero min-accept",
            vec!["--token", &tok, "--min-accept", "0"],
        ),
        (
            "min-accept above relays",
            vec!["--token", &tok, "--min-accept", "5"],
        ),
        ("empty cmd", vec!["--token", &tok, "--cmd", ""]),
    ];
    for (name, extra) in cases {
        let mut cmd = env.verb(&["rerun"], &[&relay.url]);
        if !extra.contains(&"--worker") {
            cmd.args(["--worker", &w]);
        }
        let out = cmd.args(&extra).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.starts_with("error: "), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line: {err}");
        assert!(stdout(&out).is_empty(), "{name}: nothing on stdout");
    }
    // Usage errors from the parser also exit 2.
    let out = env
        .cmd()
        .args(["rerun", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = env
        .rerun_unpaid(&w, &[&relay.url])
        .args(["--token", &tok])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // No worker anywhere.
    let out = env
        .verb(&["rerun", "--unpaid"], &[&relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no worker"));
    assert!(relay.events().is_empty(), "nothing reached the relay");
}

#[test]
fn key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let relay = TestRelay::start();
    std::fs::set_permissions(env.key_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env
        .rerun_unpaid(&worker().public_key().to_hex(), &[&relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("chmod 600") && err.contains("0644"), "{err}");
    assert!(relay.events().is_empty());
    // No key at all: a hint at `jobctl key generate`.
    let bare = TestEnv::bare();
    let out = bare
        .rerun_unpaid(&worker().public_key().to_hex(), &[&relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("jobctl key generate"));
}

#[test]
fn relays_precedence_flag_over_env_over_config() {
    let env = TestEnv::new();
    let (cfg, envr, flag) = (TestRelay::start(), TestRelay::start(), TestRelay::start());
    let w = worker().public_key().to_hex();
    env.write_config(&format!("relays = [\"{}\"]\nworker = \"{w}\"\n", cfg.url));
    let run = |with_env: bool, with_flag: bool| {
        let mut c = env.verb(&["rerun", "--unpaid"], &[]);
        if with_env {
            c.env("JOBCTL_RELAYS", format!("{}, ", envr.url));
        }
        if with_flag {
            c.args(["--relay", &flag.url]);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    run(true, true);
    assert_eq!(
        (cfg.events().len(), envr.events().len(), flag.events().len()),
        (0, 0, 1)
    );
    run(true, false);
    assert_eq!(
        (cfg.events().len(), envr.events().len(), flag.events().len()),
        (0, 1, 1)
    );
    run(false, false);
    assert_eq!(
        (cfg.events().len(), envr.events().len(), flag.events().len()),
        (1, 1, 1)
    );
}

#[test]
fn key_precedence_flag_over_env_over_config() {
    let env = TestEnv::new();
    let w = worker().public_key().to_hex();
    let flag_keys = Keys::generate();
    let flag_path = env.home().join("flag.key");
    write_private(&flag_path, &flag_keys.secret_key().to_secret_hex());
    let env_keys = Keys::generate();
    let signer = |flag: bool, with_env: bool| -> PublicKey {
        let mut c = env.rerun_unpaid(&w, &[]);
        c.arg("--dry-run");
        if flag {
            c.arg("--key-file").arg(&flag_path);
        }
        if with_env {
            c.env(
                "JOBCTL_SECRET_KEY",
                env_keys.secret_key().to_bech32().unwrap(),
            );
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        Event::from_json(stdout(&out)).unwrap().pubkey
    };
    assert_eq!(signer(true, true), flag_keys.public_key());
    assert_eq!(signer(false, true), env_keys.public_key());
    assert_eq!(signer(false, false), env.keys.public_key());
}

#[test]
fn config_supplies_worker_cmd_args_and_p_tag() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = worker().public_key();
    env.write_config(&format!(
        "relays = [\"{}\"]\nworker = \"{}\"\ncmd = \"act\"\nargs = [\"-j\", \"test\"]\np_tag = \"self\"\n[timeouts]\npublish = \"5s\"\n",
        relay.url,
        w.to_bech32().unwrap()
    ));
    let out = env.cmd().args(["rerun", "--unpaid"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = tags(&relay.events()[0]);
    assert_eq!(t[0][1], env.keys.public_key().to_hex());
    assert_eq!(t[1][1], w.to_hex());
    assert_eq!(t[3], ["args", "-j", "test"]);
}

#[test]
fn bad_config_names_file_and_key() {
    let env = TestEnv::new();
    env.write_config("relays = []\nworkr = \"x\"\n");
    let out = env.cmd().args(["rerun", "--unpaid"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("config.toml") && err.contains("workr") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1);

    env.write_config("min_accept = 0\n");
    let out = env.cmd().args(["config", "show"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("min_accept"));

    let out = env
        .cmd()
        .args(["--config", "/nonexistent/jobctl.toml", "config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    env.write_config("");
    let out = env
        .cmd()
        .args(["config", "show"])
        .env("JOBCTL_RELAYS", "https://nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("JOBCTL_RELAYS"));
}

#[test]
fn unpaid_ignores_token_env_and_quiet_still_reports_failure() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let out = env
        .rerun_unpaid(&worker().public_key().to_hex(), &[&relay.url])
        .env("JOBCTL_TOKEN", token_v4(&[1], MINT))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(tags(&relay.events()[0]).iter().all(|t| t[0] != "payment"));

    let closed = ClosedPort::new();
    let out = env
        .rerun_unpaid(&worker().public_key().to_hex(), &[&closed.url])
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: ") && err.contains("0/1"), "{err}");
}

#[test]
fn debug_logging_never_shows_the_token_or_key() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let token = token_v4(&[5], MINT);
    let out = env
        .rerun(&worker().public_key().to_hex(), &[&relay.url])
        .args(["-vvv", "--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains(&token[6..40]), "token leaked into logs");
    assert!(!err.contains(&env.keys.secret_key().to_secret_hex()));
    let out = env
        .rerun(&worker().public_key().to_hex(), &[&relay.url])
        .args(["--token", &token])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        !stderr(&out).contains(&token[6..40]),
        "token leaked into logs"
    );
}
