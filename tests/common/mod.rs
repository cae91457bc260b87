//! Test support: every test gets its own loopback relays (real
//! nostr-relay-builder `LocalRelay`s on real websockets), its own temp
//! config/data dirs and keys, and drives the built `jobctl` binary.
//! Assertions look at what the relays actually stored.
#![allow(dead_code)]

pub mod mint;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use assert_cmd::Command;
use nostr_relay_builder::prelude::*;
use tokio::runtime::Runtime;

/// One runtime shared by every relay of a test binary; tests themselves
/// are plain blocking `#[test]`s that run the CLI as a child process.
pub static RT: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
});

/// A real relay on 127.0.0.1 with an inspectable store.
pub struct TestRelay {
    relay: LocalRelay,
    db: Arc<MemoryDatabase>,
    pub url: String,
}

impl TestRelay {
    /// A relay that accepts everything (with a rate limit far above what
    /// any test sends; the bad cases use their own policies).
    pub fn start() -> Self {
        Self::with(RelayBuilder::default().rate_limit(RateLimit {
            max_reqs: 500,
            notes_per_minute: 1_000_000,
        }))
    }

    /// A relay built from `builder` (policies, NIP-42, rate limits).
    pub fn with(builder: RelayBuilder) -> Self {
        RT.block_on(async {
            loop {
                let db = Arc::new(MemoryDatabase::with_opts(MemoryDatabaseOptions {
                    events: true,
                    max_events: None,
                }));
                let port = free_port();
                let relay = LocalRelay::new(builder.clone().port(port).database(db.clone()));
                match relay.run().await {
                    Ok(()) => {
                        let url = relay.url().await.to_string();
                        return TestRelay { relay, db, url };
                    }
                    Err(_) => continue, // lost a race for the port; pick another
                }
            }
        })
    }

    /// An accepting relay on a given port (e.g. one that was closed before).
    pub fn on_port(port: u16) -> Self {
        RT.block_on(async {
            let db = Arc::new(MemoryDatabase::with_opts(MemoryDatabaseOptions {
                events: true,
                max_events: None,
            }));
            let relay = LocalRelay::new(
                RelayBuilder::default()
                    .rate_limit(RateLimit {
                        max_reqs: 500,
                        notes_per_minute: 1_000_000,
                    })
                    .port(port)
                    .database(db.clone()),
            );
            relay.run().await.expect("relay on port");
            let url = relay.url().await.to_string();
            TestRelay { relay, db, url }
        })
    }

    /// A relay whose write policy rejects every event with `reason`.
    pub fn rejecting(reason: &str) -> Self {
        Self::with(RelayBuilder::default().write_policy(RejectAll(reason.to_string())))
    }

    /// A relay that demands NIP-42 AUTH before accepting writes.
    pub fn nip42() -> Self {
        Self::with(RelayBuilder::default().nip42(RelayBuilderNip42 {
            mode: RelayBuilderNip42Mode::Write,
        }))
    }

    /// Every event this relay stored.
    pub fn events(&self) -> Vec<Event> {
        self.query(Filter::new())
    }

    /// Events matching `filter`.
    pub fn query(&self, filter: Filter) -> Vec<Event> {
        RT.block_on(self.db.query(filter))
            .expect("query")
            .into_iter()
            .collect()
    }

    /// Store an event directly, as if published by someone else.
    pub fn insert(&self, event: &Event) {
        RT.block_on(async {
            self.db.save_event(event).await.expect("save");
            self.relay.notify_event(event.clone());
        });
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.relay.shutdown();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Write policy rejecting everything with a fixed reason.
#[derive(Debug)]
pub struct RejectAll(pub String);

impl WritePolicy for RejectAll {
    fn admit_event<'a>(
        &'a self,
        _event: &'a Event,
        _addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async move { PolicyResult::Reject(self.0.clone()) })
    }
}

/// Write policy admitting at most `n` events per author, then answering
/// `rate-limited:` as a busy public relay does.
#[derive(Debug)]
pub struct RateLimitPerAuthor {
    n: usize,
    seen: std::sync::Mutex<std::collections::HashMap<PublicKey, usize>>,
}

impl RateLimitPerAuthor {
    pub fn new(n: usize) -> Self {
        RateLimitPerAuthor {
            n,
            seen: Default::default(),
        }
    }
}

impl WritePolicy for RateLimitPerAuthor {
    fn admit_event<'a>(
        &'a self,
        event: &'a Event,
        _addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async move {
            let mut seen = self.seen.lock().expect("lock");
            let count = seen.entry(event.pubkey).or_default();
            *count += 1;
            if *count > self.n {
                PolicyResult::Reject("rate-limited: slow down".into())
            } else {
                PolicyResult::Accept
            }
        })
    }
}

/// A port that refuses connections: bound (so nobody else takes it) but
/// never listening.
pub struct ClosedPort {
    _socket: socket2::Socket,
    pub url: String,
}

impl ClosedPort {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    pub fn new() -> Self {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        s.bind(&addr.into()).expect("bind");
        let port = s
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet")
            .port();
        ClosedPort {
            _socket: s,
            url: format!("ws://127.0.0.1:{port}"),
        }
    }
}

/// A port that accepts TCP but never answers the websocket handshake.
pub struct Blackhole {
    _listener: std::net::TcpListener,
    pub url: String,
}

impl Blackhole {
    pub fn new() -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        Blackhole {
            _listener: l,
            url: format!("ws://127.0.0.1:{port}"),
        }
    }
}

/// A test's private world: temp HOME/XDG dirs and a user key on disk.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub keys: Keys,
}

impl TestEnv {
    /// A fresh env with a user key written to the default key file (0600).
    pub fn new() -> Self {
        let env = Self::bare();
        let keys = Keys::generate();
        write_private(
            &env.key_path(),
            &keys.secret_key().to_bech32().expect("nsec"),
        );
        TestEnv { keys, ..env }
    }

    /// A fresh env without any key file.
    pub fn bare() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("config/jobctl")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
        TestEnv {
            dir,
            keys: Keys::generate(),
        }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home().join("config/jobctl")
    }

    pub fn key_path(&self) -> PathBuf {
        self.config_dir().join("key")
    }

    pub fn config_path(&self) -> PathBuf {
        self.config_dir().join("config.toml")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.home().join("data/jobctl/journal.sqlite")
    }

    /// Rows of the journal's jobs table: (id, state, published, token).
    pub fn journal_jobs(&self) -> Vec<(String, String, bool, Option<String>)> {
        if !self.journal_path().exists() {
            return Vec::new();
        }
        let c = rusqlite::Connection::open(self.journal_path()).expect("open journal");
        // While jobctl is still creating it, the table may not exist yet.
        let Ok(mut st) =
            c.prepare("SELECT id, state, published, token FROM jobs ORDER BY created_at")
        else {
            return Vec::new();
        };
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// `jobctl` with a clean environment pointing at this env's dirs, as a
    /// plain process (for tests that spawn it and act while it runs).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("jobctl"));
        c.env_clear()
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join("config"))
            .env("XDG_DATA_HOME", self.home().join("data"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1");
        c
    }

    /// The same, run to completion with assert_cmd (bounded at 60 s).
    pub fn cmd(&self) -> Command {
        let mut c = Command::from_std(self.std_cmd());
        c.timeout(std::time::Duration::from_secs(60));
        c
    }
}

/// Write a file with mode 0600.
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A well-formed Cashu token (V4 `cashuB`) of `amounts` from `mint`. Its
/// proofs are not signed by any mint: good for the wire format, not for
/// spending.
pub fn token_v4(amounts: &[u64], mint: &str) -> String {
    fake_token(amounts, mint).to_string()
}

/// The same as a V3 `cashuA` token.
pub fn token_v3(amounts: &[u64], mint: &str) -> String {
    fake_token(amounts, mint).to_v3_string()
}

fn fake_token(amounts: &[u64], mint: &str) -> cdk::nuts::Token {
    use cdk::nuts::{CurrencyUnit, Id, Proof, PublicKey as CashuPk, Token};
    let c = CashuPk::from_hex("02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2")
        .expect("point");
    let id = Id::from_str("009a1f293253e41e").expect("id");
    let proofs = amounts
        .iter()
        .map(|a| {
            Proof::new(
                cdk::Amount::from(*a),
                id,
                cdk::secret::Secret::generate(),
                c,
            )
        })
        .collect();
    Token::new(
        cdk::mint_url::MintUrl::from_str(mint).expect("mint url"),
        proofs,
        None,
        CurrencyUnit::Sat,
    )
}

/// Tag values of an event as plain vectors.
pub fn tags(event: &Event) -> Vec<Vec<String>> {
    event.tags.iter().map(|t| t.as_slice().to_vec()).collect()
}

/// stdout of a finished command as a trimmed string.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// stderr of a finished command.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// stdout of a finished command as JSON.
pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Fund `env`'s wallet with `amount` sat at `mint` (`wallet mint`, whose
/// fake Lightning backend pays the invoice); asserts success.
pub fn fund(env: &TestEnv, mint: &str, amount: u64) -> std::process::Output {
    let out = env
        .cmd()
        .args(["wallet", "mint", &amount.to_string(), "--mint", mint])
        .args(["--timeout", "30s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

/// (spendable, sent but not yet redeemed) over every mint of `env`'s wallet.
pub fn balance(env: &TestEnv) -> (u64, u64) {
    let (spendable, pending, _) = balance_held(env);
    (spendable, pending)
}

/// (spendable, sent but not yet redeemed, held: pending at the mint).
pub fn balance_held(env: &TestEnv) -> (u64, u64, u64) {
    let out = env
        .cmd()
        .args(["wallet", "balance", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let a = v.as_array().expect("an array of balances");
    let sum = |k: &str| a.iter().map(|b| b[k].as_u64().expect("a number")).sum();
    (sum("amount"), sum("pending"), sum("held"))
}

/// Publish signed events to relays over real websockets.
pub fn publish(keys: &Keys, relays: &[&TestRelay], events: &[Event]) {
    RT.block_on(async {
        let client = nostr_sdk::Client::builder().signer(keys.clone()).build();
        for r in relays {
            client.add_relay(r.url.as_str()).await.expect("add relay");
        }
        client.connect().await;
        client
            .wait_for_connection(std::time::Duration::from_secs(5))
            .await;
        for e in events {
            let out = client.send_event(e).await.expect("send");
            assert!(
                !out.success.is_empty(),
                "no relay accepted {}: {:?}",
                e.id,
                out.failed
            );
        }
        client.shutdown().await;
    });
}

fn ctag(name: &str, values: &[&str]) -> Tag {
    Tag::custom(
        TagKind::Custom(name.to_string().into()),
        values.iter().map(|v| v.to_string()),
    )
}

/// Unix time now.
pub fn now() -> u64 {
    Timestamp::now().as_secs()
}

/// A Loom worker driven by the test: a real key publishing real signed
/// 10100, 30100 and 5101 events to loopback relays.
pub struct ScriptedWorker {
    pub keys: Keys,
}

/// What a scripted result says.
#[derive(Default, Clone)]
pub struct ResultSpec {
    pub exit_code: i64,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub change: Option<String>,
    pub duration: Option<f64>,
    pub at: Option<u64>,
}

impl ScriptedWorker {
    pub fn new() -> Self {
        ScriptedWorker {
            keys: Keys::generate(),
        }
    }

    pub fn hex(&self) -> String {
        self.keys.public_key().to_hex()
    }

    /// A signed advertisement from `at`.
    pub fn ad(&self, name: &str, mint: Option<&str>, at: u64) -> Event {
        let mut tags = vec![
            ctag("A", &["x86_64"]),
            ctag("S", &["act", "0.2.61"]),
            ctag("min_duration", &["10"]),
            ctag("max_duration", &["3600"]),
        ];
        if let Some(m) = mint {
            tags.push(ctag("price", &["second", "1", "sat", m]));
        }
        EventBuilder::new(
            Kind::Custom(10100),
            format!(
                r#"{{"name":"{name}","description":"test worker","max_concurrent_jobs":2,"current_queue_depth":1}}"#
            ),
        )
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(&self.keys)
        .expect("sign")
    }

    /// A signed status for `job`, from the given key.
    pub fn status_by(
        keys: &Keys,
        job: &str,
        client: &str,
        status: &str,
        msg: &str,
        at: u64,
    ) -> Event {
        EventBuilder::new(Kind::Custom(30100), msg)
            .tags([
                ctag("d", &[job]),
                ctag("e", &[job]),
                ctag("p", &[client]),
                ctag("status", &[status]),
            ])
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(keys)
            .expect("sign")
    }

    pub fn status(&self, job: &str, client: &str, status: &str, msg: &str, at: u64) -> Event {
        Self::status_by(&self.keys, job, client, status, msg, at)
    }

    /// A signed result for `job`, from the given key.
    pub fn result_by(keys: &Keys, job: &str, client: &str, r: &ResultSpec) -> Event {
        let code = r.exit_code.to_string();
        let mut tags = vec![
            ctag("e", &[job]),
            ctag("p", &[client]),
            ctag(
                "success",
                &[if r.exit_code == 0 { "true" } else { "false" }],
            ),
            ctag("exit_code", &[&code]),
        ];
        if let Some(u) = &r.stdout {
            tags.push(ctag("stdout", &[u]));
        }
        if let Some(u) = &r.stderr {
            tags.push(ctag("stderr", &[u]));
        }
        if let Some(c) = &r.change {
            tags.push(ctag("change", &[c]));
        }
        if let Some(d) = r.duration {
            tags.push(ctag("duration", &[&d.to_string()]));
        }
        EventBuilder::new(Kind::Custom(5101), "")
            .tags(tags)
            .custom_created_at(Timestamp::from(r.at.unwrap_or_else(now)))
            .sign_with_keys(keys)
            .expect("sign")
    }

    pub fn result(&self, job: &str, client: &str, r: &ResultSpec) -> Event {
        Self::result_by(&self.keys, job, client, r)
    }

    /// Sign and publish.
    pub fn send(&self, relays: &[&TestRelay], events: &[Event]) {
        publish(&self.keys, relays, events);
    }
}

/// A real HTTP/1.1 blob server on 127.0.0.1, content addressed like
/// Blossom (`/<sha256>`), with a way to store a body under a wrong hash.
pub struct BlobServer {
    pub base: String,
    blobs: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BlobServer {
    pub fn start() -> Self {
        let blobs: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> =
            Default::default();
        let store = blobs.clone();
        let (listener, base) = RT.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = l.local_addr().expect("addr").port();
            (l, format!("http://127.0.0.1:{port}"))
        });
        let task = RT.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { break };
                let store = store.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut n = 0;
                    while n < buf.len() {
                        match sock.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let body = store.lock().expect("lock").get(&path).cloned();
                    let resp = match body {
                        Some(b) => {
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                b.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&b);
                            r
                        }
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found".to_vec(),
                    };
                    let _ = sock.write_all(&resp).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        BlobServer { base, blobs, task }
    }

    /// Store a body under its own sha256; returns its URL.
    pub fn put(&self, body: &[u8]) -> String {
        let hash = jobctl::logs::sha256_hex(body);
        self.put_at(&format!("/{hash}"), body)
    }

    /// Store a body at any path (e.g. under another body's hash).
    pub fn put_at(&self, path: &str, body: &[u8]) -> String {
        self.blobs
            .lock()
            .expect("lock")
            .insert(path.to_string(), body.to_vec());
        format!("{}{path}", self.base)
    }
}

impl Drop for BlobServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Dispatch an unpaid job to `relays` as `env`'s user; returns its id.
pub fn dispatch(env: &TestEnv, worker: &str, relays: &[&TestRelay], extra: &[&str]) -> String {
    let mut c = env.cmd();
    c.args(["rerun", "--unpaid", "--worker", worker]);
    for r in relays {
        c.args(["--relay", &r.url]);
    }
    let out = c.args(extra).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

/// A signed job request by `user` for `worker`, created at `at`.
pub fn job_request(user: &Keys, worker: &str, cmd: &str, token: Option<&str>, at: u64) -> Event {
    let mut tags = vec![
        ctag("p", &[worker]),
        ctag("worker", &[worker]),
        ctag("cmd", &[cmd]),
        ctag("args", &[]),
    ];
    if let Some(t) = token {
        tags.push(ctag("payment", &[t]));
    }
    EventBuilder::new(Kind::Custom(5100), "")
        .tags(tags)
        .custom_created_at(Timestamp::from(at))
        .sign_with_keys(user)
        .expect("sign")
}
