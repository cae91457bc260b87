//! Today's Loom, the writing and worker side: the kind 5102 cancel, tokens
//! today's clients decode offline (V3 with full keyset ids), the job's
//! input in the request's content, and the worker's NIP-65 relay list and
//! NIP-51 freelist. The real CLI against the real reference worker, a real
//! cdk mint and loopback relays.

mod common;
#[path = "common/nutshell.rs"]
mod nutshell;

use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

use common::mint::TestMint;
use common::*;
use jobctl::worker::{Worker, WorkerConfig};
use nostr_sdk::prelude::*;
use serde_json::Value;

struct World {
    env: TestEnv,
    relay: TestRelay,
    worker: Option<Worker>,
    wkeys: Keys,
    _mint: TestMint,
    mint_url: String,
    _dir: tempfile::TempDir,
}

impl World {
    fn new(concurrency: usize, freelist: Vec<String>) -> World {
        let env = TestEnv::new();
        let mint = TestMint::start();
        let relay = TestRelay::start();
        let dir = tempfile::tempdir().unwrap();
        let wkeys = Keys::generate();
        let cfg = WorkerConfig {
            name: "loom write worker".into(),
            allow_cmds: vec!["echo".into(), "sleep".into(), "cat".into()],
            price_per_second: 1,
            mints: vec![mint.url.clone()],
            min_duration: 1,
            max_duration: 60,
            concurrency,
            blob_dir: Some(dir.path().join("blobs")),
            wallet_dir: Some(dir.path().join("wallet")),
            freelist,
            freelist_timeout: 30,
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
            relay,
            worker: Some(worker),
            wkeys,
            mint_url: mint.url.clone(),
            _mint: mint,
            _dir: dir,
        }
    }

    fn worker_hex(&self) -> String {
        self.wkeys.public_key().to_hex()
    }

    fn rerun_as(&self, env: &TestEnv, args: &[&str]) -> String {
        let out = env
            .rerun(&self.worker_hex(), &[&self.relay.url])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    }

    fn rerun(&self, args: &[&str]) -> String {
        self.rerun_as(&self.env, args)
    }

    fn watch(&self, id: &str) -> std::process::Output {
        self.env
            .cmd()
            .args(["watch", id, "--exit-status", "--timeout", "40s"])
            .args(["--relay", &self.relay.url])
            .output()
            .unwrap()
    }

    fn logs(&self, id: &str) -> String {
        let out = self
            .env
            .cmd()
            .args(["logs", id, "--relay", &self.relay.url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn event(&self, id: &str) -> Event {
        let id = EventId::from_hex(id).unwrap();
        self.relay
            .query(Filter::new().id(id))
            .into_iter()
            .next()
            .expect("the job request is on the relay")
    }

    fn payment(&self, id: &str) -> String {
        tags(&self.event(id))
            .into_iter()
            .find(|t| t[0] == "payment")
            .map(|t| t[1].clone())
            .expect("payment tag")
    }

    fn state(&self, id: &str) -> Value {
        let out = self
            .env
            .cmd()
            .args(["status", id, "--json", "--relay", &self.relay.url])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v[0]["state"].clone()
    }

    fn wait_state(&self, id: &str, want: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.state(id);
            if s == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} never {want}: {s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn reclaim(&self, id: &str) -> String {
        let out = self
            .env
            .cmd()
            .args(["reclaim", id, "--relay", &self.relay.url])
            .output()
            .unwrap();
        stdout(&out)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            RT.block_on(w.shutdown());
        }
    }
}

/// Every proof of a V3 token carries a full keyset id: 8 bytes for a
/// version-00 keyset, 33 for a version-01 one.
fn assert_full_ids(token: &str) {
    let t = cdk::nuts::TokenV3::from_str(token).expect("a V3 token");
    let mut n = 0;
    for part in &t.token {
        for p in &part.proofs {
            let id = p.keyset_id.to_string();
            let full = (id.starts_with("00") && id.len() == 16)
                || (id.starts_with("01") && id.len() == 66);
            assert!(full, "proof keyset id `{id}` is not a full id");
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn cancel_sends_5102_and_nip09_and_the_worker_honours_either() {
    let w = World::new(1, vec![]);
    let busy = w.rerun(&["--amount", "4", "--cmd", "sleep", "--", "3"]);
    let by_cli = w.rerun(&["--amount", "9", "--cmd", "echo", "--", "never"]);
    let by_5102 = w.rerun(&["--amount", "8", "--cmd", "echo", "--", "never"]);
    w.wait_state(&by_cli, "queued");
    w.wait_state(&by_5102, "queued");

    // `jobctl cancel` publishes both the NIP-09 deletion and the 5102.
    let out = w
        .env
        .cmd()
        .args(["cancel", &by_cli, "--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let job = EventId::from_hex(&by_cli).unwrap();
    let me = w.env.keys.public_key();
    let nip09 = w.relay.query(
        Filter::new()
            .kind(Kind::EventDeletion)
            .author(me)
            .event(job),
    );
    assert_eq!(nip09.len(), 1, "one NIP-09 deletion");
    let loom = w
        .relay
        .query(Filter::new().kind(Kind::Custom(5102)).author(me).event(job));
    assert_eq!(loom.len(), 1, "one kind 5102 cancel");
    let t = tags(&loom[0]);
    assert!(t.contains(&vec!["e".to_string(), by_cli.clone()]), "{t:?}");
    assert!(t.contains(&vec!["p".to_string(), w.worker_hex()]), "{t:?}");

    // A bare 5102 (what swarmstr sends) cancels too.
    let cancel = EventBuilder::new(Kind::Custom(5102), "stop")
        .tags([
            Tag::event(EventId::from_hex(&by_5102).unwrap()),
            Tag::public_key(w.wkeys.public_key()),
        ])
        .sign_with_keys(&w.env.keys)
        .unwrap();
    publish(&w.env.keys, &[&w.relay], &[cancel]);

    for (id, paid) in [(&by_cli, 9), (&by_5102, 8)] {
        let out = w.watch(id);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        // The worker's own status says so (its result, with the refund, may
        // win the client's resolution).
        let st = w.relay.query(
            Filter::new()
                .kind(Kind::Custom(30100))
                .author(w.wkeys.public_key())
                .identifier(id.as_str()),
        );
        assert_eq!(st.len(), 1);
        assert!(
            tags(&st[0]).contains(&vec!["status".to_string(), "cancelled".to_string()]),
            "{:?}",
            tags(&st[0])
        );
        // Skipped and fully refunded.
        assert_eq!(w.reclaim(id), format!("{id} claimed {paid}"));
    }
    let out = w.watch(&busy);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn wallet_made_payments_are_v3_with_full_ids_unless_asked_and_given_tokens_go_as_given() {
    let w = World::new(2, vec![]);
    // Default: V3, full keyset ids; the worker redeems it, change is V3 too.
    let a = w.rerun(&["--amount", "6", "--cmd", "echo", "--", "a"]);
    let pay = w.payment(&a);
    assert!(pay.starts_with("cashuA"), "{pay}");
    assert_full_ids(&pay);
    // --token-format cashuB.
    let b = w.rerun(&[
        "--amount",
        "6",
        "--token-format",
        "cashuB",
        "--cmd",
        "echo",
        "--",
        "b",
    ]);
    assert!(w.payment(&b).starts_with("cashuB"), "{}", w.payment(&b));
    for id in [&a, &b] {
        let out = w.watch(id);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let change = {
        let id = EventId::from_hex(&a).unwrap();
        let res = w
            .relay
            .query(Filter::new().kind(Kind::Custom(5101)).event(id));
        tags(&res[0])
            .into_iter()
            .find(|t| t[0] == "change")
            .map(|t| t[1].clone())
            .expect("change")
    };
    assert!(change.starts_with("cashuA"), "{change}");
    assert_full_ids(&change);
    assert_eq!(w.reclaim(&a), format!("{a} claimed 5"));

    // Config key token_format.
    w.env.write_config("token_format = \"cashuB\"\n");
    let c = w.rerun(&["--amount", "3", "--cmd", "echo"]);
    assert!(w.payment(&c).starts_with("cashuB"));
    w.env.write_config("");

    // Tokens the user passes are published byte for byte.
    let given_b = stdout(&w.env.cmd().args(["wallet", "send", "5"]).output().unwrap());
    assert!(given_b.starts_with("cashuB"));
    let id = w.rerun(&["--token", &given_b, "--cmd", "echo", "--", "given"]);
    assert_eq!(w.payment(&id), given_b);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let given_a = {
        let wallet = common::mint::TestWallet::new(&w.mint_url);
        let out = w.env.cmd().args(["wallet", "send", "5"]).output().unwrap();
        assert_eq!(wallet.receive(&stdout(&out), &[]), Ok(5));
        let t = wallet.send(5);
        let t = cdk::nuts::Token::from_str(&t).unwrap().to_v3_string();
        assert!(t.starts_with("cashuA"));
        t
    };
    let id = w.rerun(&["--token", &given_a, "--cmd", "echo", "--", "given"]);
    assert_eq!(w.payment(&id), given_a);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn stdin_goes_in_the_content_and_reaches_the_command() {
    let w = World::new(2, vec![]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.txt");
    std::fs::write(&file, "line one\nline two\n").unwrap();
    let id = w.rerun(&[
        "--amount",
        "5",
        "--stdin",
        file.to_str().unwrap(),
        "--cmd",
        "cat",
    ]);
    assert_eq!(w.event(&id).content, "line one\nline two\n");
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.logs(&id), "line one\nline two\n");

    // `-` reads stdin.
    let mut child = w
        .env
        .std_rerun(&w.worker_hex(), &[&w.relay.url])
        .args(["--amount", "5", "--stdin", "-", "--cmd", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from a pipe")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.logs(&id), "from a pipe");

    // No input: `cat` sees an empty stdin and ends at once.
    let id = w.rerun(&["--amount", "5", "--cmd", "cat"]);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.logs(&id), "");

    // Over 64 KiB, or sharing stdin with the token: exit 2, nothing published.
    let before = w.relay.events().len();
    std::fs::write(&file, vec![b'x'; 64 * 1024 + 1]).unwrap();
    let out = w
        .env
        .rerun(&w.worker_hex(), &[&w.relay.url])
        .args([
            "--amount",
            "5",
            "--stdin",
            file.to_str().unwrap(),
            "--cmd",
            "cat",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("64 KiB"), "{}", stderr(&out));
    let out = w
        .env
        .rerun(&w.worker_hex(), &[&w.relay.url])
        .args(["--token", "-", "--stdin", "-", "--cmd", "cat"])
        .write_stdin("cashuAxyz")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--token -"), "{}", stderr(&out));
    assert_eq!(w.relay.events().len(), before);
}

#[test]
fn worker_publishes_relay_list_and_freelist_and_runs_freelisted_jobs_free() {
    let friend = TestEnv::new();
    let w = World::new(2, vec![friend.keys.public_key().to_hex()]);
    let wpk = w.wkeys.public_key();

    // NIP-65: the relays it serves on, read and write (no marker).
    let list = w
        .relay
        .query(Filter::new().kind(Kind::Custom(10002)).author(wpk));
    assert_eq!(list.len(), 1);
    let r = tags(&list[0]);
    assert!(r.iter().any(|t| t.len() == 2
        && t[0] == "r"
        && t[1].trim_end_matches('/') == w.relay.url.trim_end_matches('/')));

    // NIP-51 follow set with the member, named by the ad.
    let sets = w
        .relay
        .query(Filter::new().kind(Kind::Custom(30000)).author(wpk));
    assert_eq!(sets.len(), 1);
    let st = tags(&sets[0]);
    let d = st
        .iter()
        .find(|t| t[0] == "d")
        .map(|t| t[1].clone())
        .expect("d tag");
    assert!(st.contains(&vec!["p".to_string(), friend.keys.public_key().to_hex()]));
    let ad = w
        .relay
        .query(Filter::new().kind(Kind::Custom(10100)).author(wpk));
    let at = tags(&ad[0]);
    assert!(
        at.contains(&vec![
            "freelist_event".to_string(),
            format!("30000:{}:{d}", wpk.to_hex())
        ]),
        "{at:?}"
    );
    assert!(at.contains(&vec!["freelist_timeout".to_string(), "30".to_string()]));

    // A freelisted user's unpaid job runs.
    let id = w.rerun_as(&friend, &["--unpaid", "--cmd", "echo", "--", "free"]);
    let out = friend
        .cmd()
        .args(["watch", &id, "--exit-status", "--timeout", "40s"])
        .args(["--relay", &w.relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A stranger's unpaid job is refused with the words clients show.
    let id = w.rerun(&["--unpaid", "--cmd", "echo", "--", "free?"]);
    let out = w.watch(&id);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let res = w.relay.query(
        Filter::new()
            .kind(Kind::Custom(5101))
            .author(wpk)
            .event(EventId::from_hex(&id).unwrap()),
    );
    assert_eq!(res.len(), 1);
    assert!(tags(&res[0]).contains(&vec![
        "error".to_string(),
        "Pubkey not whitelisted for this worker".to_string()
    ]));
    assert_eq!(w.state(&id), "failed");
}

#[test]
fn nutshell_payments_are_v3_with_full_version_01_ids_and_the_worker_redeems_both() {
    let Some(mint) = nutshell::Nutshell::start(0) else {
        return;
    };
    let relay = TestRelay::start();
    let env = TestEnv::new();
    let dir = tempfile::tempdir().unwrap();
    let wkeys = Keys::generate();
    let cfg = WorkerConfig {
        allow_cmds: vec!["echo".into()],
        price_per_second: 1,
        mints: vec![mint.url.clone()],
        min_duration: 1,
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
        .args(["wallet", "mint", "100", "--mint", &mint.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut ids = Vec::new();
    for extra in [&[][..], &["--token-format", "cashuB"][..]] {
        let out = env
            .rerun(&wkeys.public_key().to_hex(), &[&relay.url])
            .args(["--amount", "10", "--cmd", "echo"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        ids.push(stdout(&out));
    }
    let payment = |id: &str| {
        let ev = relay
            .query(Filter::new().id(EventId::from_hex(id).unwrap()))
            .pop()
            .expect("job on the relay");
        tags(&ev)
            .into_iter()
            .find(|t| t[0] == "payment")
            .map(|t| t[1].clone())
            .expect("payment")
    };
    let a = payment(&ids[0]);
    assert!(a.starts_with("cashuA"), "{a}");
    assert_full_ids(&a);
    // Nutshell 0.20's keysets are version 01: the case cashu-ts cannot
    // decode offline from a V4 token's short ids.
    let v3 = cdk::nuts::TokenV3::from_str(&a).unwrap();
    let id = v3.token[0].proofs[0].keyset_id.to_string();
    assert!(id.starts_with("01") && id.len() == 66, "{id}");
    assert!(payment(&ids[1]).starts_with("cashuB"));
    for id in &ids {
        let out = env
            .cmd()
            .args(["watch", id, "--exit-status", "--timeout", "40s"])
            .args(["--relay", &relay.url])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let out = env
            .cmd()
            .args(["reclaim", id, "--relay", &relay.url])
            .output()
            .unwrap();
        assert_eq!(stdout(&out), format!("{id} claimed 9"), "{}", stderr(&out));
    }
    RT.block_on(worker.shutdown());
}

#[test]
fn the_worker_command_takes_a_freelist() {
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let wenv = TestEnv::new();
    let friend = Keys::generate().public_key().to_hex();
    let mut child = wenv
        .std_cmd()
        .args(["worker", "--allow-cmd", "echo", "--price", "1"])
        .args(["--accept-mint", &mint.url, "--relay", &relay.url])
        .args(["--freelist", &friend, "--freelist-timeout", "5s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("npub1"), "{line}");
    let wpk = wenv.keys.public_key();
    let sets = relay.query(Filter::new().kind(Kind::Custom(30000)).author(wpk));
    let ads = relay.query(Filter::new().kind(Kind::Custom(10100)).author(wpk));
    let lists = relay.query(Filter::new().kind(Kind::Custom(10002)).author(wpk));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(sets.len(), 1);
    assert!(tags(&sets[0]).contains(&vec!["p".to_string(), friend]));
    assert!(tags(&ads[0]).contains(&vec!["freelist_timeout".to_string(), "5".to_string()]));
    assert_eq!(lists.len(), 1);
}
