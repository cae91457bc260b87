//! Hostile input (issue 9, items 12-17): a relay that answers with garbage
//! and multi-megabyte invalid messages, terminal escapes in what workers
//! publish, bad batch lines, mint URLs that are not http(s), edited and
//! oversized tokens, and a log body far bigger than memory should hold.
//! Every peer is real: a hand-written websocket server, loopback relays,
//! an in-process cdk mint, an HTTP server streaming a generated body.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::str::FromStr;

use common::mint::TestMint;
use common::*;
use nostr_sdk::hashes::{sha1, sha256, Hash, HashEngine};
use nostr_sdk::prelude::*;

// ---------------------------------------------------------------------
// A misbehaving relay: a minimal RFC 6455 server (blocking, one thread per
// connection) that answers everything with garbage.
// ---------------------------------------------------------------------

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let n = payload.len();
    if n < 126 {
        f.push(n as u8);
    } else if n < 65536 {
        f.push(126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// One client frame: (opcode, unmasked payload).
fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b)?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b)?;
        len = u64::from_be_bytes(b);
    }
    let mut mask = [0u8; 4];
    if h[1] & 0x80 != 0 {
        s.read_exact(&mut mask)?;
    }
    let mut p = vec![0u8; len as usize];
    s.read_exact(&mut p)?;
    for (i, b) in p.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok((h[0] & 0x0f, p))
}

/// The second string of a client message (`["REQ","<id>",..]`).
fn second(msg: &str) -> String {
    serde_json::from_str::<serde_json::Value>(msg)
        .ok()
        .and_then(|v| v.get(1).and_then(|x| x.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// A 4.9 MB message that is not valid JSON (under the pool's 5 MiB cap,
/// so it is parsed, fails, and used to be logged whole).
fn huge(prefix: &str) -> Vec<u8> {
    let mut m = prefix.as_bytes().to_vec();
    m.extend(std::iter::repeat_n(b'A', 4_900_000));
    m.extend_from_slice(b"\x1b[2J\x07");
    m
}

fn garbage_session(mut s: TcpStream) {
    let mut head = Vec::new();
    {
        let mut r = BufReader::new(&s);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            head.extend_from_slice(line.as_bytes());
            if line == "\r\n" {
                break;
            }
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let Some(key) = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| v.trim().to_string())
    }) else {
        return;
    };
    let accept = base64(sha1::Hash::hash(format!("{key}{WS_GUID}").as_bytes()).as_byte_array());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if s.write_all(resp.as_bytes()).is_err() {
        return;
    }
    let mut w = s.try_clone().expect("clone");
    let spray = |w: &mut TcpStream, id: &str| -> std::io::Result<()> {
        for _ in 0..50 {
            for m in [
                "not json at all \x1b]0;pwned\x07".to_string(),
                "[\"NOTICE\"".to_string(),
                format!("[\"OK\",\"{id}\",true,\"\x1b[2J\"]"),
                format!("[\"EVENT\",\"{id}\",{{\"id\":\"00\",\"kind\":1}}]"),
                "[\"EOSE\"]".to_string(),
                "[\"CLOSED\",1,2]".to_string(),
            ] {
                w.write_all(&frame(1, m.as_bytes()))?;
            }
            w.write_all(&frame(2, b"\x00\x01binary"))?;
        }
        w.write_all(&frame(
            1,
            &huge(&format!("[\"EVENT\",\"{id}\",{{\"content\":\"")),
        ))?;
        w.write_all(&frame(1, &huge("[\"OK\",\"")))?;
        w.flush()
    };
    if spray(&mut w, "hello").is_err() {
        return;
    }
    loop {
        let Ok((op, payload)) = read_frame(&mut s) else {
            return;
        };
        match op {
            8 => {
                let _ = w.write_all(&frame(8, &[]));
                return;
            }
            9 => {
                let _ = w.write_all(&frame(10, &payload));
            }
            1 => {
                let text = String::from_utf8_lossy(&payload).to_string();
                if spray(&mut w, &second(&text)).is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// A relay that speaks websocket and nothing but garbage.
struct GarbageRelay {
    url: String,
}

impl GarbageRelay {
    fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("ws://127.0.0.1:{}", l.local_addr().expect("addr").port());
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || garbage_session(s));
            }
        });
        GarbageRelay { url }
    }
}

fn no_escapes(what: &str, s: &str) {
    assert!(
        !s.contains('\x1b') && !s.contains('\x07') && !s.contains('\u{9b}'),
        "{what} printed a raw control character: {s:?}"
    );
}

#[test]
fn a_garbage_relay_costs_a_few_bounded_log_lines_and_none_with_q_or_off() {
    let env = TestEnv::new();
    let good = TestRelay::start();
    let bad = GarbageRelay::start();
    let w = ScriptedWorker::new();

    // Healthy relays only: --json leaves stderr empty.
    let out = env
        .rerun_unpaid(&w.hex(), &[&good.url])
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "--json with healthy relays");

    let run = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut c = env.cmd();
        for (k, v) in envs {
            c.env(k, v);
        }
        c.args(extra)
            .args(["rerun", "--unpaid", "--json", "--worker", &w.hex()])
            .args(["--relay", &good.url, "--relay", &bad.url, "--timeout", "3s"])
            .output()
            .unwrap()
    };
    // Default level: a few lines, each short, no raw escapes.
    let out = run(&[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.len() < 4096, "{} bytes of stderr:\n{err}", err.len());
    assert!(err.lines().all(|l| l.chars().count() < 400), "{err}");
    no_escapes("the log", &err);
    // Even at -vv.
    let out = run(&["-vv"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.len() < 16384, "{} bytes at -vv:\n{err}", err.len());
    no_escapes("the -vv log", &err);
    // -q and JOBCTL_LOG=off: nothing at all.
    let out = run(&["-q"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "", "-q");
    let out = run(&["-q"], &[("JOBCTL_LOG", "trace")]);
    assert_eq!(stderr(&out), "", "-q beats JOBCTL_LOG");
    let out = run(&[], &[("JOBCTL_LOG", "off")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "", "JOBCTL_LOG=off");

    // Reading from it: the same.
    let out = env
        .cmd()
        .args(["workers", "--relay", &bad.url, "--relay", &good.url])
        .args(["--timeout", "3s"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.len() < 4096, "{} bytes of stderr:\n{err}", err.len());
    no_escapes("workers", &err);
}

// ---------------------------------------------------------------------
// Item 13: terminal escapes from the network.
// ---------------------------------------------------------------------

const EVIL: &str = "\x1b[2J\x1b]0;pwned\x07\u{9b}31m\u{202e}evil";

fn evil_ad(w: &ScriptedWorker, mint: &str) -> Event {
    let content = serde_json::json!({
        "name": format!("w{EVIL}"),
        "description": EVIL,
        "max_concurrent_jobs": 2,
        "current_queue_depth": 0,
    });
    let tag = |v: &[&str]| Tag::parse(v.iter().map(|s| s.to_string())).expect("tag");
    EventBuilder::new(Kind::Custom(10100), content.to_string())
        .tags([
            tag(&["A", EVIL]),
            tag(&["S", "act", EVIL]),
            tag(&["price", EVIL, "1", EVIL, &format!("{mint}{EVIL}")]),
        ])
        .sign_with_keys(&w.keys)
        .expect("sign")
}

#[test]
fn escapes_from_workers_and_relays_are_shown_escaped() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    w.send(&[&relay], &[evil_ad(&w, "http://127.0.0.1:1")]);
    let job = dispatch(&env, &w.hex(), &[&relay], &["--cmd", &format!("act{EVIL}")]);
    let me = env.keys.public_key().to_hex();
    let t = now();
    w.send(
        &[&relay],
        &[
            w.status(&job, &me, "running", &format!("step 1\n{EVIL}"), t - 2),
            w.result(
                &job,
                &me,
                &ResultSpec {
                    exit_code: 0,
                    stdout: Some(format!("http://127.0.0.1:1/{EVIL}")),
                    duration: Some(1.0),
                    at: Some(t - 1),
                    ..Default::default()
                },
            ),
        ],
    );
    for args in [
        vec!["workers"],
        vec!["watch", &job],
        vec!["status", &job],
        vec!["show", &job],
        vec!["list"],
    ] {
        let out = env
            .cmd()
            .args(&args)
            .args(["--relay", &relay.url])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        no_escapes(args[0], &err);
        assert!(
            err.contains("\\x1b[2J") || args[0] == "status",
            "{args:?} shows the escape as text: {err}"
        );
    }
}

#[test]
fn a_relay_reason_with_escapes_is_shown_escaped() {
    let env = TestEnv::new();
    let relay = TestRelay::rejecting(&format!("blocked: {EVIL}"));
    let w = ScriptedWorker::new();
    let out = env.rerun_unpaid(&w.hex(), &[&relay.url]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    no_escapes("the relay table", &err);
    assert!(err.contains("blocked: \\x1b[2J"), "{err}");
}

// ---------------------------------------------------------------------
// Item 14: batch lines are validated like flags.
// ---------------------------------------------------------------------

#[test]
fn bad_batch_lines_are_refused_like_flags() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let file = env.home().join("batch.jsonl");
    for (line, why) in [
        (
            r#"{"env":{"A=B":"x"},"unpaid":true}"#,
            "not a valid variable name",
        ),
        (
            r#"{"env":{"1A":"x"},"unpaid":true}"#,
            "not a valid variable name",
        ),
        (
            r#"{"secrets":{"A=B":"x"},"unpaid":true}"#,
            "not a valid variable name",
        ),
        (r#"{"cmd":"a\u0000ct","unpaid":true}"#, "NUL"),
        (r#"{"args":["ok","x\u0000y"],"unpaid":true}"#, "NUL"),
        (r#"{"env":{"A":"x\u0000"},"unpaid":true}"#, "NUL"),
        (r#"{"cmd":"","unpaid":true}"#, "empty"),
        (
            r#"{"unpaid":true,"token":"cashuBxyz"}"#,
            "cannot be combined",
        ),
    ] {
        std::fs::write(&file, format!("{{\"unpaid\":true}}\n{line}\n")).unwrap();
        let out = env
            .cmd()
            .args(["rerun", "--batch"])
            .arg(&file)
            .args(["--worker", &w.hex(), "--relay", &relay.url])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{line}: {err}");
        assert!(err.contains("line 2") && err.contains(why), "{line}: {err}");
    }
    assert!(relay.events().is_empty());
    assert!(env.journal_jobs().is_empty());
    // The same key through the flag is refused the same way.
    let out = env
        .rerun_unpaid(&w.hex(), &[&relay.url])
        .args(["--env", "A-B=x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a valid variable name"));
}

// ---------------------------------------------------------------------
// Items 15 and 16: mint URLs and tokens.
// ---------------------------------------------------------------------

fn rerun_with_token(
    env: &TestEnv,
    relay: &TestRelay,
    w: &ScriptedWorker,
    token: &str,
    extra: &[&str],
) -> std::process::Output {
    env.rerun(&w.hex(), &[&relay.url])
        .args(["--token", "-"])
        .args(extra)
        .write_stdin(token.to_string())
        .output()
        .unwrap()
}

#[test]
fn mint_urls_must_be_http() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    for args in [
        vec!["rerun", "--amount", "5", "--mint", "ftp://x"],
        vec!["wallet", "mint", "5", "--mint", "ftp://x"],
        vec!["wallet", "send", "5", "--mint", "file:///etc/passwd"],
        vec!["wallet", "pay", "lnbc1", "--mint", "javascript:alert(1)"],
        vec!["workers", "--mint", "ws://x"],
    ] {
        let out = env
            .cmd()
            .args(&args)
            .args(["--relay", &relay.url, "--worker", &w.hex()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    for mint in ["file:///etc/passwd", "ftp://mint.example"] {
        for token in [token_v4(&[8], mint), token_v3(&[8], mint)] {
            let out = rerun_with_token(&env, &relay, &w, &token, &["--no-check"]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{mint}: {err}");
            assert!(err.contains("not http(s)"), "{err}");
        }
    }
    assert!(relay.events().is_empty());
    assert!(env.journal_jobs().is_empty());
}

#[test]
fn oversized_and_zero_amount_tokens_are_refused_at_parse_time() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let big = token_v4(&[1; 5000], "http://127.0.0.1:3338");
    assert!(big.len() > 100_000);
    let out = rerun_with_token(&env, &relay, &w, &big, &["--no-check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("KiB"), "{}", stderr(&out));
    for amounts in [&[0u64, 8][..], &[1 << 63, 1 << 63]] {
        let t = token_v4(amounts, "http://127.0.0.1:3338");
        let out = rerun_with_token(&env, &relay, &w, &t, &["--no-check"]);
        assert_eq!(out.status.code(), Some(2), "{amounts:?}: {}", stderr(&out));
    }
    assert!(relay.events().is_empty());
    assert!(env.journal_jobs().is_empty());
}

#[test]
fn edited_tokens_are_checked_against_the_mint_keysets() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let out = env
        .cmd()
        .args([
            "wallet",
            "mint",
            "300",
            "--mint",
            &mint.url,
            "--timeout",
            "30s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.cmd().args(["wallet", "send", "96"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let good = stdout(&out);

    // A denomination the keyset does not have.
    let huge = edit_v4(&good, |t| {
        t.token[0].proofs[0].amount = cdk::Amount::from(1u64 << 62)
    });
    let out = rerun_with_token(&env, &relay, &w, &huge, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("denomination"), "{}", stderr(&out));
    let three = edit_v4(&good, |t| {
        t.token[0].proofs[0].amount = cdk::Amount::from(3u64)
    });
    let out = rerun_with_token(&env, &relay, &w, &three, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("denomination"), "{}", stderr(&out));
    // A unit the keyset is not in.
    let usd = edit_v4(&good, |t| t.unit = cdk::nuts::CurrencyUnit::Usd);
    let out = rerun_with_token(&env, &relay, &w, &usd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("unit"), "{}", stderr(&out));
    // An amount swapped for another real denomination: the DLEQ proof
    // (when the mint gave one) no longer holds.
    let has_dleq = matches!(
        cdk::nuts::Token::from_str(&good).expect("token"),
        cdk::nuts::Token::TokenV4(ref t) if t.token[0].proofs[0].dleq.is_some()
    );
    if has_dleq {
        let swapped = edit_v4(&good, |t| {
            let p = &mut t.token[0].proofs[0];
            p.amount = cdk::Amount::from(if u64::from(p.amount) == 1 { 2u64 } else { 1 });
        });
        let out = rerun_with_token(&env, &relay, &w, &swapped, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("DLEQ"), "{}", stderr(&out));
    } else {
        eprintln!("the mint's token carries no DLEQ proofs; DLEQ case skipped");
    }
    assert!(relay.events().is_empty());
    assert!(env.journal_jobs().is_empty());
    // The untouched token still goes through.
    let out = rerun_with_token(&env, &relay, &w, &good, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(relay.events().len(), 1);
}

// ---------------------------------------------------------------------
// Item 17: a log far bigger than memory should hold.
// ---------------------------------------------------------------------

/// An HTTP server answering every GET with `blocks` copies of `block`
/// (generated as it is sent: nothing big is stored anywhere).
fn stream_server(block: Vec<u8>, blocks: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://127.0.0.1:{}", l.local_addr().expect("addr").port());
    let block = std::sync::Arc::new(block);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let block = block.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    block.len() * blocks
                );
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for _ in 0..blocks {
                    if s.write_all(&block).is_err() {
                        return;
                    }
                }
            });
        }
    });
    base
}

fn block() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn hash_of(block: &[u8], blocks: usize) -> String {
    let mut e = sha256::Hash::engine();
    for _ in 0..blocks {
        e.input(block);
    }
    sha256::Hash::from_engine(e).to_string()
}

#[test]
fn a_200_mb_log_streams_through_verified() {
    const BLOCKS: usize = 200;
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let block = block();
    let hash = hash_of(&block, BLOCKS);
    let base = stream_server(block, BLOCKS);
    let job = dispatch(&env, &w.hex(), &[&relay], &[]);
    let me = env.keys.public_key().to_hex();
    let bad = "0".repeat(64);
    w.send(
        &[&relay],
        &[w.result(
            &job,
            &me,
            &ResultSpec {
                exit_code: 0,
                stdout: Some(format!("{base}/{hash}")),
                stderr: Some(format!("{base}/{bad}")),
                ..Default::default()
            },
        )],
    );
    let mut child = env
        .std_cmd()
        .args(["logs", &job, "--relay", &relay.url, "--timeout", "120s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut e = sha256::Hash::engine();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        e.input(&buf[..n]);
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(total, BLOCKS << 20);
    assert_eq!(sha256::Hash::from_engine(e).to_string(), hash);

    // A body that does not match its name: nothing printed, exit 1.
    let out = env
        .cmd()
        .args([
            "logs",
            &job,
            "--stderr",
            "--relay",
            &relay.url,
            "--timeout",
            "120s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("integrity"), "{}", stderr(&out));
}
