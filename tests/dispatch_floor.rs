//! Dispatch at the floor (issue 14): `republish --all` sends every
//! journaled job at once over one pool, each to the relays that have not
//! accepted it, and records every outcome.

mod common;

use std::collections::BTreeSet;

use common::*;
use nostr_sdk::prelude::*;

/// A mint URL for tokens that are never checked (`--no-check`).
const MINT: &str = "http://127.0.0.1:3338";

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

/// A TCP proxy in front of a relay that counts the connections it is
/// given: how many connection rounds a command makes.
struct Counting {
    url: String,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Counting {
    fn new(relay: &TestRelay) -> Counting {
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let target = relay.url.trim_start_matches("ws://").trim_end_matches('/');
        let target = target.to_string();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(upstream) = TcpStream::connect(&target) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream, client);
            }
        });
        Counting { url, accepted }
    }

    fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_paid_dispatch_makes_one_connection_round() {
    let env = TestEnv::new();
    let w = ScriptedWorker::new();
    let relays = [TestRelay::start(), TestRelay::start()];
    w.send(&[&relays[0], &relays[1]], &[w.ad("w", Some(MINT), now())]);
    let proxies: Vec<Counting> = relays.iter().map(Counting::new).collect();
    let urls: Vec<&str> = proxies.iter().map(|p| p.url.as_str()).collect();
    // The worker's ad (for the token's mint) and its relay list (not
    // cached yet) are looked up, and the job published: on one pool.
    for strict in [false, true] {
        let before: Vec<usize> = proxies.iter().map(Counting::connections).collect();
        let mut cmd = env.rerun(&w.hex(), &urls);
        cmd.args(["--no-check", "--token", &token_v4(&[4], MINT)]);
        if strict {
            cmd.args(["--strict", "--", "strict"]);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        for (p, b) in proxies.iter().zip(before) {
            assert_eq!(p.connections() - b, 1, "one connection per relay");
        }
    }
    for r in &relays {
        assert_eq!(r.query(Filter::new().kind(Kind::Custom(5100))).len(), 2);
    }
}

#[test]
fn a_job_refused_by_its_checks_is_taken_out_of_the_journal() {
    let env = TestEnv::new();
    let w = ScriptedWorker::new();
    let relay = TestRelay::start();
    w.send(
        &[&relay],
        &[w.ad("w", Some("https://other.mint.example"), now())],
    );
    // Journaled while the worker's ad was read, then refused (--strict):
    // nothing published, nothing left in the journal.
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--no-check", "--strict", "--token", &token_v4(&[4], MINT)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not list"), "{}", stderr(&out));
    assert!(relay
        .query(Filter::new().kind(Kind::Custom(5100)))
        .is_empty());
    assert!(env.journal_jobs().is_empty(), "{:?}", env.journal_jobs());
    // A token whose mint cannot be reached, with --require-check: the same.
    let dead = "http://127.0.0.1:9";
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--require-check", "--token", &token_v4(&[4], dead)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(relay
        .query(Filter::new().kind(Kind::Custom(5100)))
        .is_empty());
    assert!(env.journal_jobs().is_empty(), "{:?}", env.journal_jobs());
}

#[test]
fn a_mints_keysets_are_remembered_and_still_judge_every_token() {
    use common::mint::{TestMint, TestWallet};
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let out = fund(&env, &mint.url, 300);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let send = |amount: &str| {
        let out = env.cmd().args(["wallet", "send", amount]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let (first, second) = (send("20"), send("30"));
    let rerun = |token: &str, tag: &str| {
        env.rerun(&w.hex(), &[&relay.url])
            .args(["--token", token, "--", tag])
            .output()
            .unwrap()
    };
    // The first check fetches the mint's keysets and keeps them, 0700.
    let out = rerun(&first, "one");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cache = env.journal_path().parent().unwrap().join("mint-keysets");
    let files: Vec<_> = walk(&cache);
    assert!(
        !files.is_empty(),
        "nothing cached under {}",
        cache.display()
    );
    use std::os::unix::fs::PermissionsExt;
    let dir = files[0].parent().unwrap();
    assert_eq!(
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o077,
        0
    );

    // Later checks use them and still refuse what the mint would.
    let three = edit_v4(&second, |t| {
        t.token[0].proofs[0].amount = cdk::Amount::from(3u64)
    });
    let out = rerun(&three, "edited");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("denomination"), "{}", stderr(&out));
    assert_eq!(TestWallet::new(&mint.url).receive(&second, &[]), Ok(30));
    let out = rerun(&second, "spent");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already spent"), "{}", stderr(&out));
    // A cache file someone edited is not believed: the keys come from
    // the mint again.
    for f in &files {
        std::fs::write(f, "{\"id\":\"00ffffffffffffff\"}").unwrap();
    }
    let out = rerun(&send("10"), "again");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(relay.query(Filter::new().kind(Kind::Custom(5100))).len(), 2);
    // ... and the cache is whole again.
    for f in &files {
        let set: cdk::nuts::KeySet =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        assert!(set.verify_id().is_ok());
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn kills_during_an_overlapped_dispatch_never_leave_a_job_published_but_not_journaled() {
    use common::mint::TestMint;
    use std::process::Stdio;
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relays = [TestRelay::start(), TestRelay::start()];
    let urls = [relays[0].url.as_str(), relays[1].url.as_str()];
    let w = ScriptedWorker::new();
    w.send(
        &[&relays[0], &relays[1]],
        &[w.ad("w", Some(&mint.url), now())],
    );
    let out = fund(&env, &mint.url, 100);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.cmd().args(["wallet", "send", "10"]).output().unwrap();
    let token = stdout(&out);
    let mut rng = Rng::new();
    // The kill window follows how long a run takes here (see money.rs).
    let (mut window_ms, mut kills, mut runs) = (100u64, 0, 0);
    while kills < 25 {
        runs += 1;
        let mut c = env.std_rerun(&w.hex(), &urls);
        c.args(["--token", &token, "--", &format!("run{runs}")]);
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(
            rng.below(window_ms.max(3)),
        ));
        let finished = child.try_wait().unwrap().is_some();
        window_ms = if finished {
            (window_ms * 4 / 5).max(3)
        } else {
            (window_ms * 21 / 20 + 1).min(200)
        };
        if !finished {
            // SAFETY: plain kill(2) of our own child by pid.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGKILL);
            }
            kills += 1;
        }
        let _ = child.wait();
        assert!(runs < 300, "too few runs were still running when killed");
    }
    // Every job a relay holds was journaled before it was sent.
    let journaled: BTreeSet<String> = env.journal_jobs().into_iter().map(|j| j.0).collect();
    for r in &relays {
        for e in r.query(Filter::new().kind(Kind::Custom(5100))) {
            assert!(
                journaled.contains(&e.id.to_hex()),
                "{} published, not journaled",
                e.id
            );
        }
    }
    eprintln!("{runs} runs, {kills} killed, {} journaled", journaled.len());
}

#[test]
fn a_run_cut_off_during_its_checks_leaves_nothing_sendable() {
    use std::process::Stdio;
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    // A mint that accepts connections and never answers: the spent-check
    // hangs, the job is journaled meanwhile.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().flatten().collect();
        drop(held);
    });
    let token = token_v4(&[4], &mint);
    let run = |extra: &[&str]| {
        let mut c = env.std_rerun(&w.hex(), &[&relay.url]);
        c.args(["--idempotency-key", "ci-42", "--token", &token])
            .args(extra)
            .args(["--", "job"]);
        c
    };
    let mut child = run(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the commit (the check cannot end), then cut the run off.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.journal_jobs().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never journaled");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let jobs = env.journal_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].1, "checking", "{jobs:?}");
    let id = jobs[0].0.clone();

    // Not sendable: `republish --all` skips it, `republish ID` refuses.
    let out = env
        .cmd()
        .args(["republish", "--all", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env
        .cmd()
        .args(["republish", &id, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pre-flight checks"),
        "{}",
        stderr(&out)
    );
    assert!(relay.events().is_empty());

    // The same call again checks afresh (here: told to skip the check)
    // and sends the job (the same event, when signed in the same second).
    let out = run(&["--no-check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let jobs = env.journal_jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_ne!(jobs[0].1, "checking", "{jobs:?}");
    assert!(jobs[0].2, "published: {jobs:?}");
    assert_eq!(relay.events().len(), 1);
}
