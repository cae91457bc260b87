//! Hive CI end to end: a repository announcement, workflow runs (5401),
//! their jobs (5100) and results (5402 and the worker's 5101/30100) on
//! real loopback relays; `jobctl runs` lists them the way Budabit's
//! Pipelines tab does, and `jobctl ci report` uploads a log to the
//! reference worker's blob server and publishes a 5402.

mod common;

use common::*;
use nostr_sdk::prelude::*;
use serde_json::Value;

fn ctag(name: &str, values: &[&str]) -> Tag {
    Tag::custom(
        TagKind::Custom(name.to_string().into()),
        values.iter().map(|v| v.to_string()),
    )
}

fn signed(kind: u16, tags: Vec<Tag>, k: &Keys, at: u64) -> Event {
    EventBuilder::new(Kind::Custom(kind), "")
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(k)
        .expect("sign")
}

/// A 5401 exactly as the protocol doc (and Budabit) writes it.
fn run_event(by: &Keys, coord: &str, wf: &str, branch: &str, publisher: &Keys, at: u64) -> Event {
    let by_hex = by.public_key().to_hex();
    let pub_hex = publisher.public_key().to_hex();
    let tags = vec![
        ctag("a", &[coord]),
        ctag("workflow", &[wf]),
        ctag("triggered-by", &[&by_hex]),
        ctag("publisher", &[&pub_hex]),
        ctag("trigger", &["manual"]),
        ctag("branch", &[branch]),
        ctag("commit", &["0123456789abcdef0123456789abcdef01234567"]),
        ctag("t", &["hive-ci"]),
    ];
    signed(5401, tags, by, at)
}

/// A 5100 the way Budabit builds it: `p` (worker), `e` (run), no `worker` tag.
fn budabit_job(by: &Keys, worker: &str, run: &EventId, at: u64) -> Event {
    let tags = vec![
        ctag("p", &[worker]),
        ctag("e", &[&run.to_hex()]),
        ctag("cmd", &["bash"]),
        ctag("args", &["-c", "echo run"]),
        ctag("env", &["HIVE_CI_RUN_ID", &run.to_hex()]),
    ];
    signed(5100, tags, by, at)
}

fn workflow_result(k: &Keys, run: &EventId, status: &str, exit: &str, at: u64) -> Event {
    let tags = vec![
        ctag("e", &[&run.to_hex()]),
        ctag("status", &[status]),
        ctag("exit_code", &[exit]),
        ctag("duration", &["42"]),
        ctag("log_url", &["http://127.0.0.1:1/log"]),
    ];
    signed(5402, tags, k, at)
}

fn announcement(owner: &Keys, id: &str, relays: &[&str], maintainers: &[PublicKey]) -> Event {
    let a = GitRepositoryAnnouncement {
        id: id.into(),
        name: Some(id.into()),
        description: None,
        web: vec![],
        clone: vec![],
        relays: relays
            .iter()
            .map(|r| RelayUrl::parse(r).expect("relay"))
            .collect(),
        euc: None,
        maintainers: maintainers.to_vec(),
    };
    EventBuilder::git_repository_announcement(a)
        .expect("announcement")
        .sign_with_keys(owner)
        .expect("sign")
}

struct World {
    home: TestRelay,
    repo_relay: TestRelay,
    owner: Keys,
    worker: ScriptedWorker,
    coord: String,
    runs: Vec<EventId>,
}

/// The owner announces `jobctl` on `repo_relay`; three runs (owner,
/// maintainer, stranger) and one of another repo live there too.
fn world() -> World {
    let (home, repo_relay) = (TestRelay::start(), TestRelay::start());
    let (owner, maint, stranger) = (Keys::generate(), Keys::generate(), Keys::generate());
    let worker = ScriptedWorker::new();
    let coord = format!("30617:{}:jobctl", owner.public_key().to_hex());
    let t = now() - 600;
    let (p1, p2, p3) = (Keys::generate(), Keys::generate(), Keys::generate());
    let r1 = run_event(&owner, &coord, ".github/workflows/ci.yml", "main", &p1, t);
    let r2 = run_event(
        &maint,
        &coord,
        ".github/workflows/ci.yml",
        "dev",
        &p2,
        t + 10,
    );
    let r3 = run_event(
        &stranger,
        &coord,
        ".github/workflows/evil.yml",
        "main",
        &p3,
        t + 20,
    );
    let other = format!("30617:{}:other", owner.public_key().to_hex());
    let r4 = run_event(
        &owner,
        &other,
        ".github/workflows/ci.yml",
        "main",
        &p1,
        t + 30,
    );
    let j1 = budabit_job(&owner, &worker.hex(), &r1.id, t + 1);
    let j2 = budabit_job(&maint, &worker.hex(), &r2.id, t + 11);
    let ann = announcement(&owner, "jobctl", &[&repo_relay.url], &[maint.public_key()]);
    let events = vec![
        ann,
        r1.clone(),
        r2.clone(),
        r3.clone(),
        r4,
        j1.clone(),
        j2.clone(),
        worker.status(
            &j1.id.to_hex(),
            &owner.public_key().to_hex(),
            "running",
            "",
            t + 2,
        ),
        worker.result(
            &j1.id.to_hex(),
            &owner.public_key().to_hex(),
            &ResultSpec::default(),
        ),
        worker.status(
            &j2.id.to_hex(),
            &maint.public_key().to_hex(),
            "running",
            "",
            t + 12,
        ),
        workflow_result(&p1, &r1.id, "success", "0", t + 50),
        // A forged success for the running run, by a key that is not its publisher.
        workflow_result(&stranger, &r2.id, "success", "0", t + 60),
    ];
    publish(&owner, &[&repo_relay], &events);
    World {
        home,
        repo_relay,
        owner,
        worker,
        coord,
        runs: vec![r1.id, r2.id, r3.id],
    }
}

fn runs(env: &TestEnv, w: &World, repo: &str, extra: &[&str]) -> std::process::Output {
    env.cmd()
        .args([
            "runs",
            "--repo",
            repo,
            "--relay",
            &w.home.url,
            "--timeout",
            "8s",
        ])
        .args(extra)
        .output()
        .expect("run")
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn runs_lists_a_repos_trusted_runs_newest_first_with_their_state() {
    let env = TestEnv::new();
    let w = world();
    // The configured relay has nothing: the announcement's relay is found
    // through the address's relay hint, then its `relays` tag.
    let naddr = Nip19Coordinate::new(
        Coordinate::new(Kind::Custom(30617), w.owner.public_key()).identifier("jobctl"),
        [RelayUrl::parse(&w.repo_relay.url).expect("url")],
    )
    .to_bech32()
    .expect("naddr");
    let out = runs(&env, &w, &naddr, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(ids(&v), vec![w.runs[1].to_hex(), w.runs[0].to_hex()]);
    let (r2, r1) = (&v[0], &v[1]);
    assert_eq!(r1["state"], "success");
    assert_eq!(r1["source"], "workflow-result");
    assert_eq!(r1["workflow"], ".github/workflows/ci.yml");
    assert_eq!(r1["branch"], "main");
    assert_eq!(r1["triggered_by"], w.owner.public_key().to_hex());
    assert_eq!(r1["worker"], w.worker.hex());
    assert_eq!(r1["duration"], 42.0);
    assert_eq!(r1["repo"], w.coord.as_str());
    assert_eq!(r2["state"], "running", "a forged 5402 does not count: {r2}");
    assert_eq!(r2["source"], "job-status");
    // The table: ids on stdout, rows on stderr.
    let out = runs(&env, &w, &naddr, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        vec![w.runs[1].to_hex(), w.runs[0].to_hex()]
    );
    let table = stderr(&out);
    for word in [
        "workflow", "ci.yml", "dev", "main", "0123456", "success", "running",
    ] {
        assert!(table.contains(word), "{word} missing from\n{table}");
    }
}

#[test]
fn runs_filters_and_other_address_forms() {
    let env = TestEnv::new();
    let w = world();
    let npub = w.owner.public_key().to_bech32().expect("npub");
    let enc = w.repo_relay.url.replace(':', "%3A").replace('/', "%2F");
    let forms = [format!("nostr://{npub}/{enc}/jobctl"), w.coord.to_string()];
    for (i, repo) in forms.iter().enumerate() {
        let mut extra = vec!["--json", "--all-authors"];
        if i == 1 {
            extra.extend(["--relay", &w.repo_relay.url]);
        }
        let out = runs(&env, &w, repo, &extra);
        assert_eq!(out.status.code(), Some(0), "{repo}: {}", stderr(&out));
        let got = ids(&json(&out));
        assert_eq!(
            got,
            vec![w.runs[2].to_hex(), w.runs[1].to_hex(), w.runs[0].to_hex()],
            "{repo}"
        );
    }
    let repo = &forms[0];
    let one = |extra: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(extra);
        let out = runs(&env, &w, repo, &all);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        ids(&json(&out))
    };
    assert_eq!(one(&["--branch", "dev"]), vec![w.runs[1].to_hex()]);
    assert_eq!(one(&["--status", "success"]), vec![w.runs[0].to_hex()]);
    assert_eq!(
        one(&["--workflow", "ci.yml", "--limit", "1"]),
        vec![w.runs[1].to_hex()]
    );
    assert!(one(&["--workflow", "release.yml"]).is_empty());
}

#[test]
fn runs_refuses_bad_input_with_exit_2() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let hex = Keys::generate().public_key().to_hex();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--repo".into(), "github.com/x/y".into()],
            "is not a repository",
        ),
        (
            vec!["--repo".into(), format!("30617:{hex}")],
            "no identifier",
        ),
        (
            vec!["--repo".into(), "nostr://alice@example.com/x".into()],
            "NIP-05",
        ),
        (
            vec![
                "--repo".into(),
                format!("30617:{hex}:x"),
                "--status".into(),
                "bogus".into(),
            ],
            "not a run state",
        ),
        (
            vec![
                "--repo".into(),
                format!("30617:{hex}:x"),
                "--limit".into(),
                "0".into(),
            ],
            "--limit",
        ),
    ];
    for (args, want) in cases {
        let out = env
            .cmd()
            .arg("runs")
            .args(&args)
            .args(["--relay", &relay.url])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("error:") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(stdout(&out).is_empty());
    }
}

/// The reference worker's blob server, on loopback.
fn blob_server(dir: &std::path::Path) -> jobctl::blobs::BlobServer {
    let store = jobctl::blobs::BlobStore::open(&dir.join("blobs")).expect("store");
    RT.block_on(jobctl::blobs::BlobServer::start(
        store,
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .expect("blob server")
}

fn report(env: &TestEnv, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = env.cmd();
    c.args(["ci", "report"]).args(args);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().expect("run")
}

#[test]
fn ci_report_uploads_the_log_and_publishes_the_result_runs_then_shows() {
    let env = TestEnv::new();
    let w = world();
    let blobs = blob_server(env.home());
    let publisher = Keys::generate();
    // A run of the owner whose publisher is the key the runner holds.
    let run = run_event(
        &w.owner,
        &w.coord,
        ".github/workflows/ci.yml",
        "release",
        &publisher,
        now() - 5,
    );
    publish(&w.owner, &[&w.repo_relay], std::slice::from_ref(&run));
    let log = env.home().join("act.log");
    std::fs::write(&log, "step 1 ok\nstep 2 failed\n").expect("log");
    let nsec = publisher.secret_key().to_secret_hex();
    let run_hex = run.id.to_hex();
    let vars = [
        ("HIVE_CI_NSEC", nsec.as_str()),
        ("HIVE_CI_RUN_ID", run_hex.as_str()),
        ("HIVE_CI_RELAYS", w.repo_relay.url.as_str()),
        ("HIVE_CI_BLOSSOM_SERVER", blobs.base.as_str()),
    ];
    let log_arg = log.to_str().expect("path");
    let out = report(
        &env,
        &vars,
        &["--exit-code", "3", "--duration", "61", "--log", log_arg],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out);
    assert!(!stderr(&out).contains(&nsec), "the key never shows");
    let stored = w.repo_relay.query(
        Filter::new()
            .kind(Kind::Custom(5402))
            .author(publisher.public_key()),
    );
    assert_eq!(stored.len(), 1);
    let e = &stored[0];
    assert_eq!(e.id.to_hex(), id);
    let t = tags(e);
    let sha = jobctl::logs::sha256_hex(b"step 1 ok\nstep 2 failed\n");
    let url = format!("{}/{sha}", blobs.base);
    assert_eq!(
        t,
        vec![
            vec!["e".to_string(), run_hex.clone()],
            vec!["status".into(), "failure".into()],
            vec!["exit_code".into(), "3".into()],
            vec!["duration".into(), "61".into()],
            vec!["log_url".into(), url.clone()],
        ]
    );
    let body = RT
        .block_on(jobctl::blossom::download(
            &url,
            Some(&sha),
            std::time::Duration::from_secs(5),
        ))
        .expect("the log is on the blob server");
    assert_eq!(body, b"step 1 ok\nstep 2 failed\n");
    // `runs` now shows the run failed, from its 5402.
    let out = runs(
        &env,
        &w,
        &w.coord,
        &[
            "--json",
            "--relay",
            &w.repo_relay.url,
            "--branch",
            "release",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v[0]["id"], run_hex.as_str());
    assert_eq!(
        (v[0]["state"].as_str(), v[0]["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert_eq!(v[0]["log_url"], url.as_str());
}

#[test]
fn ci_report_without_a_log_and_its_bad_inputs() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let publisher = Keys::generate();
    let nsec = publisher.secret_key().to_bech32().expect("nsec");
    let run = EventId::all_zeros().to_hex();
    let ok = [
        ("HIVE_CI_NSEC", nsec.as_str()),
        ("HIVE_CI_RUN_ID", run.as_str()),
    ];
    let out = report(
        &env,
        &ok,
        &["--exit-code", "0", "--relay", &relay.url, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["accepted"], 1);
    let stored = relay.query(Filter::new().kind(Kind::Custom(5402)));
    assert_eq!(stored.len(), 1);
    assert_eq!(
        tags(&stored[0])[1],
        vec!["status".to_string(), "success".into()]
    );
    assert_eq!(stored[0].pubkey, publisher.public_key());
    let missing = env.home().join("nope.log");
    let present = env.home().join("act.log");
    std::fs::write(&present, "log").expect("log");
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, &'a str);
    let bad: Vec<Case> = vec![
        (vec![("HIVE_CI_RUN_ID", &run)], vec![], "HIVE_CI_NSEC"),
        (
            vec![("HIVE_CI_NSEC", "nope"), ("HIVE_CI_RUN_ID", &run)],
            vec![],
            "not a secret key",
        ),
        (vec![("HIVE_CI_NSEC", &nsec)], vec![], "no run"),
        (
            ok.to_vec(),
            vec!["--log", missing.to_str().expect("p")],
            "--log",
        ),
        (
            ok.to_vec(),
            vec!["--log", present.to_str().expect("p")],
            "Blossom server",
        ),
        (ok.to_vec(), vec!["--duration", "soon"], "--duration"),
        (ok.to_vec(), vec!["--duration=-3"], "--duration"),
        (ok.to_vec(), vec!["--run", "xyz"], "--run"),
    ];
    for (vars, extra, want) in bad {
        let mut args = vec!["--exit-code", "1", "--relay", &relay.url];
        args.extend(extra);
        let out = report(&env, &vars, &args);
        assert_eq!(out.status.code(), Some(2), "{want}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{want}: {}", stderr(&out));
        assert!(!stderr(&out).contains(&nsec));
    }
    let no_relay = report(&env, &ok, &["--exit-code", "0"]);
    assert_eq!(no_relay.status.code(), Some(2), "{}", stderr(&no_relay));
    assert_eq!(
        relay.query(Filter::new().kind(Kind::Custom(5402))).len(),
        1,
        "nothing more published"
    );
}

/// Write an executable stub command into `dir`.
fn stub(dir: &std::path::Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("stub");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn the_built_in_runner_script_reports_with_jobctl() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let blobs = blob_server(env.home());
    // Stand-ins for git (with a nostr:// helper) and act: act fails with 4.
    let bin = env.home().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    stub(
        &bin,
        "git",
        r#"if [ "$1" = clone ]; then for a; do d="$a"; done; mkdir -p "$d"; fi"#,
    );
    stub(
        &bin,
        "act",
        r#"echo "act ran $2 on $(basename "$PWD")"; exit 4"#,
    );
    let script = env.home().join("runner.sh");
    std::fs::write(&script, jobctl::hive::exec::RUNNER_SCRIPT).expect("script");
    let publisher = Keys::generate();
    let run = EventId::all_zeros().to_hex();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env_clear()
        .env("PATH", path)
        .env("HOME", env.home())
        .env("XDG_CONFIG_HOME", env.home().join("config"))
        .env("XDG_DATA_HOME", env.home().join("data"))
        .env("JOBCTL", assert_cmd::cargo::cargo_bin("jobctl"))
        .env("HIVE_CI_RUN_ID", &run)
        .env("HIVE_CI_REPOSITORY", "nostr://npub1x/jobctl")
        .env("HIVE_CI_WORKFLOW", ".github/workflows/ci.yml")
        .env("HIVE_CI_BRANCH", "main")
        .env("HIVE_CI_COMMIT", "abc")
        .env("HIVE_CI_RELAYS", &relay.url)
        .env("HIVE_CI_BLOSSOM_SERVER", &blobs.base)
        .env("HIVE_CI_NSEC", publisher.secret_key().to_secret_hex())
        .output()
        .expect("bash");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let stored = relay.query(Filter::new().kind(Kind::Custom(5402)));
    assert_eq!(stored.len(), 1, "{}", stderr(&out));
    let r = jobctl::hive::ResultEvent::from_event(&stored[0]).expect("a 5402");
    assert_eq!(r.author, publisher.public_key());
    assert_eq!(
        (r.result.status.as_str(), r.result.exit_code),
        ("failure", Some(4))
    );
    let url = r.result.log_url.expect("log_url");
    let log = RT
        .block_on(jobctl::blossom::download(
            &url,
            None,
            std::time::Duration::from_secs(5),
        ))
        .expect("log");
    assert_eq!(
        String::from_utf8_lossy(&log),
        "act ran .github/workflows/ci.yml on repo\n"
    );
}

/// A free reference worker that runs `bash` for `client`, on `relay`.
struct CiWorker {
    worker: Option<jobctl::worker::Worker>,
    keys: Keys,
    blobs: String,
    _dir: tempfile::TempDir,
}

impl CiWorker {
    fn start(relay: &TestRelay, client: &Keys) -> CiWorker {
        let dir = tempfile::tempdir().expect("dir");
        let keys = Keys::generate();
        let cfg = jobctl::worker::WorkerConfig {
            name: "hive ci worker".into(),
            allow_cmds: vec!["bash".into()],
            unpaid_clients: vec![client.public_key().to_hex()],
            price_per_second: 0,
            min_duration: 1,
            max_duration: 60,
            concurrency: 2,
            blob_dir: Some(dir.path().join("blobs")),
            wallet_dir: Some(dir.path().join("wallet")),
            ..Default::default()
        };
        let url = RelayUrl::parse(&relay.url).expect("url");
        let worker = RT
            .block_on(jobctl::worker::Worker::start(cfg, keys.clone(), &[url]))
            .expect("worker");
        let blobs = worker.blob_base.clone();
        CiWorker {
            worker: Some(worker),
            keys,
            blobs,
            _dir: dir,
        }
    }

    fn hex(&self) -> String {
        self.keys.public_key().to_hex()
    }
}

impl Drop for CiWorker {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            RT.block_on(w.shutdown());
        }
    }
}

/// A runner script that stands in for act: logs, then reports with
/// `jobctl ci report` (the job's environment has no HOME: it makes one).
fn stand_in_script(env: &TestEnv, exit: i32) -> std::path::PathBuf {
    let bin = assert_cmd::cargo::cargo_bin("jobctl");
    let body = format!(
        "set -u\nexport HOME=\"$(mktemp -d)\"\nlog=\"$HOME/act.log\"\n\
         echo \"act -W $HIVE_CI_WORKFLOW at $HIVE_CI_BRANCH\" >\"$log\"\n\
         '{}' ci report --exit-code {exit} --duration 1 --log \"$log\"\nexit {exit}\n",
        bin.display()
    );
    let p = env.home().join("runner.sh");
    std::fs::write(&p, body).expect("script");
    p
}

fn tag_value(e: &Event, name: &str) -> Option<String> {
    tags(e)
        .into_iter()
        .find(|t| t[0] == name && t.len() > 1)
        .map(|t| t[1].clone())
}

fn of_kind(relay: &TestRelay, kind: u16) -> Vec<Event> {
    relay.query(Filter::new().kind(Kind::Custom(kind)))
}

/// Poll `runs --repo --json` until the run's 5402 says `want` (at most 30 s).
fn wait_run_state(env: &TestEnv, relay: &TestRelay, coord: &str, run: &str, want: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = env
            .cmd()
            .args(["runs", "--repo", coord, "--relay", &relay.url, "--json"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json(&out);
        let found = v
            .as_array()
            .and_then(|a| a.iter().find(|r| r["id"] == run).cloned());
        let decided = |r: &Value| r["state"] == want && r["source"] == "workflow-result";
        if let Some(r) = found.filter(decided) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run {run} never {want}: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn fresh_run(
    env: &TestEnv,
    relay: &TestRelay,
    w: &CiWorker,
    coord: &str,
    extra: &[&str],
) -> std::process::Output {
    let script = stand_in_script(env, 0);
    env.cmd()
        .args([
            "rerun",
            "--repo",
            coord,
            "--workflow",
            ".github/workflows/ci.yml",
        ])
        .args(["--branch", "main", "--worker", &w.hex(), "--unpaid"])
        .args([
            "--blossom",
            &w.blobs,
            "--relay",
            &relay.url,
            "--timeout",
            "10s",
        ])
        .args(["--script", script.to_str().expect("path")])
        .args(extra)
        .output()
        .expect("rerun")
}

#[test]
fn a_fresh_run_uploads_its_script_runs_on_the_worker_and_reruns() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = CiWorker::start(&relay, &env.keys);
    let ann = announcement(&env.keys, "demo", &[&relay.url], &[]);
    publish(&env.keys, &[&relay], &[ann]);
    let coord = format!("30617:{}:demo", env.keys.public_key().to_hex());
    let out = fresh_run(&env, &relay, &w, &coord, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = stdout(&out);
    let runs = of_kind(&relay, 5401);
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r.id.to_hex(), run);
    assert_eq!(tag_value(r, "a").as_deref(), Some(coord.as_str()));
    assert_eq!(tag_value(r, "t").as_deref(), Some("hive-ci"));
    let me = env.keys.public_key().to_hex();
    assert_eq!(tag_value(r, "triggered-by").as_deref(), Some(me.as_str()));
    // The job runs `bash -c` a bootstrap of the uploaded script.
    let jobs = of_kind(&relay, 5100);
    assert_eq!(jobs.len(), 1);
    let job = jobctl::protocol::JobRequest::from_event(&jobs[0]).expect("job");
    assert_eq!((job.parent, job.cmd.as_str()), (Some(r.id), "bash"));
    let script = std::fs::read(env.home().join("runner.sh")).expect("script");
    let sha = jobctl::logs::sha256_hex(&script);
    assert!(job.args[1].contains(&sha), "{:?}", job.args);
    // `watch RUN` follows its job; the run's 5402 decides the exit status.
    let out = env
        .cmd()
        .args(["watch", &run, "--exit-status", "--timeout", "30s"])
        .args(["--relay", &relay.url])
        .output()
        .expect("watch");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("workflow run"), "{}", stderr(&out));
    // The worker runs it; the runner reports; `runs` shows success.
    let row = wait_run_state(&env, &relay, &coord, &run, "success");
    let logs = env
        .cmd()
        .args(["logs", &jobs[0].id.to_hex(), "--relay", &relay.url])
        .output()
        .expect("logs");
    assert_eq!(
        row["source"],
        "workflow-result",
        "{}{}",
        stdout(&logs),
        stderr(&logs)
    );
    let results = of_kind(&relay, 5402);
    assert_eq!(results.len(), 1);
    let publisher = tag_value(r, "publisher").expect("publisher");
    assert_eq!(results[0].pubkey.to_hex(), publisher);

    follow_verbs_show_the_run(&env, &relay, &run, &jobs[0].id.to_hex());

    // `rerun RUN`: a new 5401 and 5100, fresh HIVE_CI_*, `e` = the new run.
    let again = |extra: &[&str]| {
        env.cmd()
            .args([
                "rerun",
                &run,
                "--unpaid",
                "--relay",
                &relay.url,
                "--timeout",
                "10s",
            ])
            .args(extra)
            .output()
            .expect("rerun")
    };
    let out = again(&["--idempotency-key", "k1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let run2 = v["run"].as_str().expect("run").to_string();
    let job2_id = v["id"].as_str().expect("id").to_string();
    assert_ne!(run2, run);
    let r2 = relay
        .query(Filter::new().id(EventId::from_hex(&run2).expect("id")))
        .pop()
        .expect("new run");
    assert_eq!(
        tag_value(&r2, "workflow").as_deref(),
        Some(".github/workflows/ci.yml")
    );
    let pub2 = tag_value(&r2, "publisher").expect("publisher");
    assert_ne!(pub2, publisher, "a fresh throwaway key");
    let j2 = relay
        .query(Filter::new().id(EventId::from_hex(&job2_id).expect("id")))
        .pop()
        .expect("new job");
    let req2 = jobctl::protocol::JobRequest::from_event(&j2).expect("job");
    assert_eq!(req2.parent, Some(r2.id));
    assert_eq!((req2.cmd.as_str(), &req2.args), ("bash", &job.args));
    let env_of = |k: &str| {
        req2.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(env_of("HIVE_CI_RUN_ID"), Some(run2.clone()));
    assert_eq!(env_of("HIVE_CI_BLOSSOM_SERVER"), Some(w.blobs.clone()));
    let (_, ct) = req2
        .secrets
        .iter()
        .find(|(k, _)| k == "HIVE_CI_NSEC")
        .expect("HIVE_CI_NSEC");
    let nsec = nip44::decrypt(w.keys.secret_key(), &env.keys.public_key(), ct)
        .expect("the worker decrypts it");
    let k = Keys::parse(&nsec).expect("a key");
    assert_eq!(k.public_key().to_hex(), pub2);
    let stranger = Keys::generate();
    assert!(nip44::decrypt(stranger.secret_key(), &env.keys.public_key(), ct).is_err());
    wait_run_state(&env, &relay, &coord, &run2, "success");
    // The same idempotency key publishes nothing new and prints the same.
    let (n1, n0) = (of_kind(&relay, 5401).len(), of_kind(&relay, 5100).len());
    let out = again(&["--idempotency-key", "k1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), run2);
    assert_eq!(
        (of_kind(&relay, 5401).len(), of_kind(&relay, 5100).len()),
        (n1, n0)
    );
    // A key that names a plain job is not a run's: bad input, nothing new.
    let out = env
        .rerun_unpaid(&w.hex(), &[&relay.url])
        .args([
            "--cmd",
            "bash",
            "--idempotency-key",
            "plain",
            "--",
            "-c",
            "true",
        ])
        .output()
        .expect("plain job");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = again(&["--idempotency-key", "plain"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a workflow run's job"),
        "{}",
        stderr(&out)
    );
    assert_eq!(of_kind(&relay, 5401).len(), n1);
    // `rerun JOB` with a job id still re-runs the job as such.
    let out = env
        .rerun_unpaid(&w.hex(), &[&relay.url])
        .args([&job2_id, "--json", "--secret", "HIVE_CI_NSEC=x"])
        .output()
        .expect("rerun job");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(json(&out).get("run").is_none());
    assert_eq!(
        of_kind(&relay, 5401).len(),
        n1,
        "no new run for a job rerun"
    );
}

#[test]
fn bad_run_input_exits_2_and_publishes_nothing() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = CiWorker::start(&relay, &env.keys);
    let coord = format!("30617:{}:demo", env.keys.public_key().to_hex());
    let script = stand_in_script(&env, 0);
    let missing = env.home().join("nope.sh");
    let hex = w.hex();
    let good: Vec<(&str, &str)> = vec![
        ("--repo", &coord),
        ("--workflow", ".github/workflows/ci.yml"),
        ("--worker", &hex),
        ("--blossom", &w.blobs),
        ("--script", script.to_str().expect("p")),
    ];
    let cases: Vec<((&str, &str), &str)> = vec![
        (("--repo", "github.com/x/y"), "--repo"),
        (("--workflow", " "), "--workflow"),
        (("--blossom", "ftp://x"), "--blossom"),
        (("--script", missing.to_str().expect("p")), "--script"),
        (("--worker", "nope"), "--worker"),
        (("--cmd", "ls"), "--cmd"),
        (("--secret", "NOT_SET_ANYWHERE"), "--secret"),
        (("--blossom", ""), "Blossom"),
    ];
    for ((flag, value), want) in cases {
        let mut c = env.cmd();
        c.args(["rerun", "--unpaid", "--relay", &relay.url]);
        for (f, v) in &good {
            if *f == flag {
                if !value.is_empty() {
                    c.args([flag, value]);
                }
            } else {
                c.args([*f, *v]);
            }
        }
        if !good.iter().any(|(f, _)| *f == flag) {
            c.args([flag, value]);
        }
        let out = c.output().expect("rerun");
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("error:") && err.contains(want),
            "{flag}: {err}"
        );
        assert!(stdout(&out).is_empty());
    }
    assert!(of_kind(&relay, 5401).is_empty() && of_kind(&relay, 5100).is_empty());
}

/// `status`, `show` and `logs` given a run id: the run's state from its
/// 5402, its job, and the workflow log from the 5402's log_url.
fn follow_verbs_show_the_run(env: &TestEnv, relay: &TestRelay, run: &str, job: &str) {
    let read = |verb: &[&str]| {
        let out = env
            .cmd()
            .args(verb)
            .args(["--relay", &relay.url, "--timeout", "8s"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{verb:?}: {}", stderr(&out));
        out
    };
    let v = json(&read(&["status", run, "--json"]));
    assert_eq!(v[0]["id"], run);
    assert_eq!(v[0]["state"], "success");
    assert_eq!(v[0]["run"]["job"], job);
    assert_eq!(v[0]["run"]["source"], "workflow-result");
    assert_eq!(v[0]["run"]["exit_code"], 0);
    assert_eq!(stdout(&read(&["status", run])), format!("{run} success"));
    let v = json(&read(&["show", run, "--json"]));
    assert_eq!(
        (v["id"].as_str(), v["run"]["id"].as_str()),
        (Some(job), Some(run))
    );
    let log = read(&["logs", run]);
    assert_eq!(
        String::from_utf8_lossy(&log.stdout),
        "act -W .github/workflows/ci.yml at main\n"
    );
    // A job id still shows the job, without a run.
    let v = json(&read(&["status", job, "--json"]));
    assert_eq!(v[0]["id"], job);
    assert!(v[0].get("run").is_none());
}

#[test]
fn watch_run_exit_status_follows_a_failed_workflow() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = CiWorker::start(&relay, &env.keys);
    let coord = format!("30617:{}:demo", env.keys.public_key().to_hex());
    let script = stand_in_script(&env, 3);
    let out = env
        .cmd()
        .args([
            "rerun",
            "--repo",
            &coord,
            "--workflow",
            "ci.yml",
            "--worker",
            &w.hex(),
        ])
        .args(["--unpaid", "--blossom", &w.blobs, "--relay", &relay.url])
        .args(["--script", script.to_str().expect("p")])
        .output()
        .expect("rerun");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("no announcement"), "{}", stderr(&out));
    let run = stdout(&out);
    let out = env
        .cmd()
        .args(["watch", &run, "--exit-status", "--timeout", "30s", "--json"])
        .args(["--relay", &relay.url])
        .output()
        .expect("watch");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let last: Value =
        serde_json::from_str(stdout(&out).lines().last().expect("a line")).expect("json");
    assert_eq!(last["type"], "run");
    assert_eq!(
        (last["state"].as_str(), last["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
}

fn balance(env: &TestEnv) -> String {
    let out = env
        .cmd()
        .args(["wallet", "balance"])
        .output()
        .expect("balance");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_paid_rerun_of_a_run_pays_only_once_the_run_is_accepted() {
    let env = TestEnv::new();
    let (relay, refusing) = (TestRelay::start(), TestRelay::rejecting("blocked: no runs"));
    let mint = common::mint::TestMint::start();
    let w = CiWorker::start(&relay, &env.keys);
    let out = env
        .cmd()
        .args(["wallet", "mint", "100", "--mint", &mint.url])
        .output()
        .expect("mint");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let coord = format!("30617:{}:demo", env.keys.public_key().to_hex());
    let old = run_event(
        &env.keys,
        &coord,
        "ci.yml",
        "main",
        &Keys::generate(),
        now() - 60,
    );
    let old_job = budabit_job(&env.keys, &w.hex(), &old.id, now() - 59);
    publish(&env.keys, &[&relay], &[old.clone(), old_job]);
    let rerun = |relays: &[&str], extra: &[&str]| {
        let mut c = env.cmd();
        c.args([
            "rerun",
            &old.id.to_hex(),
            "--amount",
            "5",
            "--mint",
            &mint.url,
        ]);
        for r in relays {
            c.args(["--relay", r]);
        }
        c.args(extra).output().expect("rerun")
    };
    // The run reaches 1 of the 2 relays needed: no job, no token made.
    let out = rerun(&[&relay.url, &refusing.url], &["--min-accept", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no job was sent"), "{}", stderr(&out));
    assert_eq!(balance(&env), "100");
    assert!(env.journal_jobs().is_empty());
    assert_eq!(of_kind(&relay, 5100).len(), 1);
    // Accepted: the token is made, journaled with the job and sent.
    let out = rerun(&[&relay.url], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = stdout(&out);
    let rows = env.journal_jobs();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].3.as_deref().is_some_and(|t| t.starts_with("cashu")));
    let job = relay
        .query(Filter::new().id(EventId::from_hex(&rows[0].0).expect("id")))
        .pop()
        .expect("the job");
    assert_eq!(tag_value(&job, "e"), Some(run.clone()));
    assert!(tag_value(&job, "payment").is_some());
    // The old job said nowhere to report: the re-run reports where it went.
    let req = jobctl::protocol::JobRequest::from_event(&job).expect("job");
    let relays = req.env.iter().find(|(k, _)| k == "HIVE_CI_RELAYS");
    assert_eq!(
        relays.map(|(_, v)| v.trim_end_matches('/')),
        Some(relay.url.trim_end_matches('/'))
    );
    // --dry-run: the signed run and job on stdout, nothing published or paid.
    let n = of_kind(&relay, 5401).len();
    let out = env
        .cmd()
        .args([
            "rerun",
            &run,
            "--unpaid",
            "--dry-run",
            "--relay",
            &relay.url,
        ])
        .output()
        .expect("dry run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Event> = stdout(&out)
        .lines()
        .map(|l| Event::from_json(l).expect("event"))
        .collect();
    assert_eq!(
        lines.iter().map(|e| e.kind.as_u16()).collect::<Vec<_>>(),
        vec![5401, 5100]
    );
    assert_eq!(of_kind(&relay, 5401).len(), n);
}

#[test]
fn a_run_reaches_a_worker_that_listens_only_on_its_own_relay() {
    let env = TestEnv::new();
    let (a, home) = (TestRelay::start(), TestRelay::start());
    // The worker serves on `home` only; its NIP-65 list says so, and the
    // list is found on the client's relay `a`.
    let w = CiWorker::start(&home, &env.keys);
    let list = home.query(
        Filter::new()
            .kind(Kind::Custom(10002))
            .author(w.keys.public_key()),
    );
    assert_eq!(list.len(), 1, "the worker publishes its relay list");
    a.insert(&list[0]);
    let ann = announcement(&env.keys, "routed", &[&a.url], &[]);
    publish(&env.keys, &[&a], &[ann]);
    let coord = format!("30617:{}:routed", env.keys.public_key().to_hex());
    let out = fresh_run(&env, &a, &w, &coord, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["worker_inbox"].as_array().map(Vec::len), Some(1));
    let run = report["run"].as_str().expect("run id").to_string();
    // The run goes where the repository and the user say; its job also
    // goes to the worker's inbox, where the worker takes it.
    assert_eq!(of_kind(&home, 5401).len(), 0);
    let job = of_kind(&home, 5100);
    assert_eq!(job.len(), 1, "the job reached the worker's own relay");
    assert_eq!(of_kind(&a, 5100).len(), 1);
    wait_run_state(&env, &a, &coord, &run, "success");
}
