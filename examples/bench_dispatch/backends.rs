//! The relays and the mint `bench_dispatch` runs against, chosen by the
//! environment:
//!
//! - `BENCH_RELAY=local` (default): 3 in-process nostr-relay-builder
//!   `LocalRelay`s; `BENCH_RELAY=nostr-rs-relay`: 3 separate nostr-rs-relay
//!   processes, each with its own temp dir, config.toml and SQLite
//!   database (the binary from `$NOSTR_RS_RELAY`, else PATH; `cargo install
//!   nostr-rs-relay`).
//! - `BENCH_MINT=cdk` (default): the in-process cdk mint of the tests;
//!   `BENCH_MINT=nutshell`: a Nutshell mint (`pip install cashu`, FakeWallet
//!   Lightning) charging input fees.
//!
//! Every backend listens on 127.0.0.1 and stops when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nostr_sdk::{Client, Event};

use crate::common::mint::TestMint;
use crate::common::{TestRelay, RT};
use crate::nutshell::Nutshell;

/// How many relays every run publishes to.
pub const RELAYS: usize = 3;

/// The Nutshell mint's input fee, parts per thousand per proof.
pub const NUTSHELL_FEE_PPK: u64 = 100;

/// How long a nostr-rs-relay may take to accept a websocket.
const RELAY_START_TIMEOUT: Duration = Duration::from_secs(30);

/// The value of `var` (lower case), one of `allowed`; the first when unset.
fn choice(var: &str, allowed: &[&'static str]) -> &'static str {
    let value = std::env::var(var).unwrap_or_default().to_lowercase();
    if value.is_empty() {
        return allowed[0];
    }
    match allowed.iter().find(|a| **a == value) {
        Some(a) => a,
        None => {
            eprintln!(
                "error: {var}={value}: expected one of {}",
                allowed.join(", ")
            );
            std::process::exit(2);
        }
    }
}

/// Which relays to start, from `BENCH_RELAY` (checked before anything
/// starts, so a missing binary stops the benchmark with nothing running).
pub enum RelayKind {
    Local,
    NostrRs(PathBuf),
}

impl RelayKind {
    pub fn from_env() -> RelayKind {
        match choice("BENCH_RELAY", &["local", "nostr-rs-relay"]) {
            "local" => RelayKind::Local,
            _ => RelayKind::NostrRs(nostr_rs_relay_exe()),
        }
    }

    /// `RELAYS` relays of this kind.
    pub fn start(&self) -> Relays {
        match self {
            RelayKind::Local => Relays::Local((0..RELAYS).map(|_| TestRelay::start()).collect()),
            RelayKind::NostrRs(exe) => {
                let relays = (0..RELAYS).map(|_| NostrRsRelay::start(exe)).collect();
                Relays::NostrRs(relays, version_of(exe))
            }
        }
    }
}

/// The relays under test.
pub enum Relays {
    Local(Vec<TestRelay>),
    NostrRs(Vec<NostrRsRelay>, String),
}

impl Relays {
    pub fn urls(&self) -> Vec<String> {
        match self {
            Relays::Local(r) => r.iter().map(|r| r.url.clone()).collect(),
            Relays::NostrRs(r, _) => r.iter().map(|r| r.url.clone()).collect(),
        }
    }

    /// For the header.
    pub fn describe(&self) -> String {
        match self {
            Relays::Local(_) => "nostr-relay-builder LocalRelay (in-process)".into(),
            Relays::NostrRs(_, v) => format!("{v} (separate processes, SQLite)"),
        }
    }
}

/// `$NOSTR_RS_RELAY`, else `nostr-rs-relay` on PATH; exits when neither.
fn nostr_rs_relay_exe() -> PathBuf {
    let found = match std::env::var_os("NOSTR_RS_RELAY").filter(|p| !p.is_empty()) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("nostr-rs-relay"))
                .find(|p| p.is_file())
        }),
    };
    found.unwrap_or_else(|| {
        eprintln!(
            "error: BENCH_RELAY=nostr-rs-relay needs the nostr-rs-relay binary: \
             `cargo install nostr-rs-relay`, then put it on PATH or set NOSTR_RS_RELAY"
        );
        std::process::exit(1);
    })
}

/// `exe --version`'s first line, or the file name.
fn version_of(exe: &Path) -> String {
    Command::new(exe)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| exe.display().to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The config of one benchmark relay: loopback, its own data directory, no
/// rate limits, no kind filter, room for big batches.
fn nostr_rs_relay_config(dir: &Path, port: u16) -> String {
    format!(
        r#"[info]
relay_url = "ws://127.0.0.1:{port}/"
name = "jobctl bench relay"

[database]
engine = "sqlite"
data_directory = "{dir}"

[network]
address = "127.0.0.1"
port = {port}

[limits]
# 0: no limit on events per second or subscriptions per minute.
messages_per_sec = 0
subscriptions_per_min = 0
max_event_bytes = 1048576
max_ws_message_bytes = 1048576
max_ws_frame_bytes = 1048576
broadcast_buffer = 65536
event_persist_buffer = 16384
"#,
        dir = dir.display()
    )
}

/// One nostr-rs-relay process on 127.0.0.1, killed on drop.
pub struct NostrRsRelay {
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl NostrRsRelay {
    /// Start one; a port picked free can be taken before the relay binds
    /// it, so a failed start is retried.
    pub fn start(exe: &Path) -> NostrRsRelay {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(exe) {
                Ok(r) => return r,
                Err(e) => last = e,
            }
        }
        panic!("nostr-rs-relay did not start:\n{last}");
    }

    fn try_start(exe: &Path) -> Result<NostrRsRelay, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, nostr_rs_relay_config(dir.path(), port)).expect("config");
        let log = std::fs::File::create(dir.path().join("relay.log")).expect("log");
        let child = Command::new(exe)
            .current_dir(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("--db")
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        let mut relay = NostrRsRelay {
            url: format!("ws://127.0.0.1:{port}"),
            child,
            dir,
        };
        let deadline = Instant::now() + RELAY_START_TIMEOUT;
        while !websocket_accepted(port) {
            if let Ok(Some(st)) = relay.child.try_wait() {
                return Err(format!("exited with {st}; its log:\n{}", relay.log()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no websocket within {RELAY_START_TIMEOUT:?}; its log:\n{}",
                    relay.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(relay)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("relay.log")).unwrap_or_default()
    }
}

impl Drop for NostrRsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether 127.0.0.1:`port` answers a websocket upgrade with 101.
fn websocket_accepted(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut head = [0u8; 12];
    s.write_all(request.as_bytes()).is_ok()
        && s.read_exact(&mut head).is_ok()
        && &head[9..12] == b"101"
}

/// Publish signed `events` to every relay of `urls`; panics unless every
/// relay accepted every event (the benchmark needs the ad on all three).
pub fn publish(urls: &[String], events: &[Event]) {
    RT.block_on(async {
        let client = Client::builder().build();
        for u in urls {
            client.add_relay(u.as_str()).await.expect("add relay");
        }
        client.connect().await;
        client.wait_for_connection(Duration::from_secs(5)).await;
        for e in events {
            let out = client.send_event(e).await.expect("send");
            assert!(
                out.failed.is_empty() && out.success.len() == urls.len(),
                "not every relay accepted {}: {:?}",
                e.id,
                out.failed
            );
        }
        client.shutdown().await;
    });
}

/// Which mint to start, from `BENCH_MINT` (checked before anything
/// starts).
pub enum MintKind {
    Cdk,
    Nutshell,
}

impl MintKind {
    pub fn from_env() -> MintKind {
        match choice("BENCH_MINT", &["cdk", "nutshell"]) {
            "cdk" => MintKind::Cdk,
            _ if crate::nutshell::executable().is_none() => {
                eprintln!(
                    "error: BENCH_MINT=nutshell needs Nutshell's `mint` on PATH \
                     (`pip install cashu`) or in JOBCTL_TEST_NUTSHELL"
                );
                std::process::exit(1);
            }
            _ => MintKind::Nutshell,
        }
    }

    pub fn start(&self) -> Mint {
        match self {
            MintKind::Cdk => Mint::Cdk(TestMint::start()),
            MintKind::Nutshell => {
                Mint::Nutshell(Nutshell::start(NUTSHELL_FEE_PPK).expect("Nutshell's `mint`"))
            }
        }
    }
}

/// The mint under test.
pub enum Mint {
    Cdk(TestMint),
    Nutshell(Nutshell),
}

impl Mint {
    pub fn url(&self) -> &str {
        match self {
            Mint::Cdk(m) => &m.url,
            Mint::Nutshell(n) => &n.url,
        }
    }

    /// For the header.
    pub fn describe(&self) -> String {
        match self {
            Mint::Cdk(_) => "cdk (in-process, fake Lightning, no input fee)".into(),
            Mint::Nutshell(n) => format!(
                "Nutshell (separate process, FakeWallet, input fee {} ppk)",
                n.fee_ppk
            ),
        }
    }
}
