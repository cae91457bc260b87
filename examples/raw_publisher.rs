//! The floor for a dispatch: sign one kind 5100 job request with the
//! nostr crate, send it over plain websockets (a hand-rolled RFC 6455
//! client on std TCP, one thread per relay) to each relay, wait for each
//! `OK`, exit. Nothing else: no journal, no lookups, no pool.
//!
//!     cargo run --release --example raw_publisher -- WORKER_HEX ws://127.0.0.1:PORT...
//!
//! The signing key comes from $JOBCTL_SECRET_KEY (hex), else a fresh one.
//! Exits 0 when every relay answered `OK true`.
//!
//! With `RAW_JOURNAL=FILE` it also keeps a journal the way a client that
//! must not lose a job has to: the signed event is committed durably to an
//! SQLite database (WAL, `synchronous=FULL`) while the sockets connect and
//! handshake, and is sent only once the commit is done. The floor for a
//! dispatch that journals before it publishes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use nostr_sdk::prelude::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(worker) = args.next().and_then(|w| PublicKey::parse(&w).ok()) else {
        eprintln!("usage: raw_publisher WORKER_HEX ws://HOST:PORT...");
        std::process::exit(2);
    };
    let urls: Vec<String> = args.collect();
    let keys = std::env::var("JOBCTL_SECRET_KEY")
        .ok()
        .and_then(|k| Keys::parse(&k).ok())
        .unwrap_or_else(Keys::generate);
    let event = EventBuilder::new(Kind::Custom(5100), "")
        .tags([
            Tag::public_key(worker),
            Tag::parse(["cmd", "act"]).expect("tag"),
            // A fresh event every run (ids are content hashes).
            Tag::parse(["nonce", &nonce()]).expect("tag"),
        ])
        .sign_with_keys(&keys)
        .expect("sign");
    let msg = format!(r#"["EVENT",{}]"#, event.as_json());
    // Held (written) until the journal commit is done: the sockets connect
    // meanwhile, and send only after it.
    let gate = std::sync::Arc::new(std::sync::RwLock::new(()));
    let held = gate.write().expect("gate");
    let threads: Vec<_> = urls
        .into_iter()
        .map(|u| {
            let (msg, gate) = (msg.clone(), gate.clone());
            std::thread::spawn(move || publish(&u, &msg, &gate))
        })
        .collect();
    let journal = std::env::var_os("RAW_JOURNAL").map(|path| commit(&path, &event));
    drop(held);
    let mut ok = true;
    for t in threads {
        match t.join() {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => ok = false,
            Ok(Err(e)) => {
                eprintln!("{e}");
                ok = false
            }
            Err(_) => ok = false,
        }
    }
    // Closing the journal checkpoints its WAL, as any SQLite client's does.
    drop(journal);
    println!("{}", event.id);
    std::process::exit(if ok { 0 } else { 1 });
}

/// Commit `event` durably to the SQLite journal at `path`.
fn commit(path: &std::ffi::OsStr, event: &Event) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).expect("journal");
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, event TEXT NOT NULL);",
    )
    .expect("journal schema");
    c.execute(
        "INSERT INTO jobs (id, event) VALUES (?1, ?2)",
        [event.id.to_hex(), event.as_json()],
    )
    .expect("journal insert");
    c
}

fn nonce() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default()
}

/// Connect, handshake, wait for `gate` (the journal commit), send one
/// text frame, read frames until `OK`.
fn publish(url: &str, msg: &str, gate: &std::sync::RwLock<()>) -> std::io::Result<bool> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| std::io::Error::other("only ws:// URLs"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = TcpStream::connect(host)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )?;
    // The 101 response ends with an empty line.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other("handshake refused"));
    }
    let _committed = gate.read().map_err(|_| std::io::Error::other("gate"))?;
    s.write_all(&frame(msg.as_bytes()))?;
    loop {
        let text = read_frame(&mut s)?;
        if text.starts_with("[\"OK\"") {
            return Ok(text.contains(",true,"));
        }
    }
}

/// A masked, final text frame (clients must mask).
fn frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x81u8];
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// One unmasked frame from the server, as text.
fn read_frame(s: &mut TcpStream) -> std::io::Result<String> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let mut n = (h[1] & 0x7f) as u64;
    if n == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b)?;
        n = u16::from_be_bytes(b) as u64;
    } else if n == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b)?;
        n = u64::from_be_bytes(b);
    }
    let mut body = vec![0u8; n as usize];
    s.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}
