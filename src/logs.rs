//! Job logs: downloading a result's stdout/stderr over HTTP(S) and, when
//! the URL is content addressed (Blossom: a 64-hex sha256 in the path),
//! verifying the body against it before a single byte is handed out.
//!
//! Memory stays bounded whatever the size: the body streams into an
//! unlinked temporary file (mode 0600) while it is hashed, is verified,
//! and only then is copied out. A failed check prints nothing.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::time::Duration;

use nostr_sdk::hashes::{sha256, Hash, HashEngine};

use crate::error::{Error, Result};

/// Largest log body accepted (4 GiB): it is spooled to disk, not memory.
pub const MAX_LOG_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Size of the copy buffer (the only part of the body in memory).
const CHUNK: usize = 64 * 1024;

/// The sha256 a Blossom-style URL commits to: the last path segment that
/// is 64 hex characters, optionally followed by a file extension.
pub fn blossom_hash(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = path.split_once("://").map(|(_, rest)| rest).unwrap_or(path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    segments.into_iter().rev().find_map(|seg| {
        let stem = seg.split('.').next().unwrap_or(seg);
        (stem.len() == 64 && stem.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| stem.to_ascii_lowercase())
    })
}

/// Lowercase hex sha256 of `body`.
pub fn sha256_hex(body: &[u8]) -> String {
    sha256::Hash::hash(body).to_string()
}

/// A new temporary file, readable by its owner only, already unlinked so
/// nothing is left behind whatever happens to the process.
fn spool_file() -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    for attempt in 0..64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("jobctl-log-{}-{nanos:x}-{attempt}", std::process::id());
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::io(
                    format!("cannot create a temporary file in {}", dir.display()),
                    e,
                ))
            }
        }
    }
    Err(Error::Runtime(format!(
        "cannot create a temporary file in {}",
        dir.display()
    )))
}

/// Download `url` into a spool file, hashing as it goes; returns the file
/// (rewound) and the body's length once the body is verified.
pub fn download(url: &str, timeout: Duration) -> Result<(File, u64)> {
    let shown = crate::text::clip(url, 200);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::Runtime(format!("log URL `{shown}` is not http(s)")));
    }
    let mut resp = bitreq::get(url)
        .with_timeout(timeout.as_secs().max(1))
        .with_max_redirects(5)
        .send_lazy()
        .map_err(|e| {
            Error::Runtime(format!(
                "GET {shown}: {}",
                crate::text::clip(&e.to_string(), 200)
            ))
        })?;
    if !(200..300).contains(&resp.status_code) {
        return Err(Error::Runtime(format!(
            "GET {shown}: HTTP {} {}",
            resp.status_code,
            crate::text::clip(&resp.reason_phrase, 100)
        )));
    }
    let mut file = spool_file()?;
    let mut engine = sha256::Hash::engine();
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Runtime(format!(
                    "GET {shown}: {} after {total} bytes",
                    crate::text::clip(&e.to_string(), 200)
                )))
            }
        };
        total += n as u64;
        if total > MAX_LOG_BYTES {
            return Err(Error::Runtime(format!(
                "GET {shown}: the log is over {} GiB; not printed",
                MAX_LOG_BYTES >> 30
            )));
        }
        engine.input(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| Error::io("cannot write the log to a temporary file", e))?;
    }
    let actual = sha256::Hash::from_engine(engine).to_string();
    check_hash(url, &actual)?;
    file.rewind()
        .map_err(|e| Error::io("cannot read back the temporary log file", e))?;
    Ok((file, total))
}

/// Download `url`, verify it when content addressed, then copy it to
/// `out`; returns the number of bytes written. Nothing reaches `out`
/// unless the whole body arrived and verified. Blocking; memory stays at
/// one 64 KiB buffer whatever the size. A closed pipe on `out` (`| head`)
/// ends the copy quietly.
pub fn fetch_to(url: &str, timeout: Duration, out: &mut dyn Write) -> Result<u64> {
    let (file, total) = download(url, timeout)?;
    copy_out(file, total, out)
}

/// Copy a verified spool file (from [`download`]) to `out`; a reader that
/// went away (a closed pipe) is not an error.
pub fn copy_out(file: File, total: u64, out: &mut dyn Write) -> Result<u64> {
    let mut reader = io::BufReader::with_capacity(CHUNK, file);
    match io::copy(&mut reader, out).and_then(|n| out.flush().map(|_| n)) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(total),
        Err(e) => Err(Error::io("cannot write to stdout", e)),
    }
}

/// Download `url` and verify it when content addressed, into memory: for
/// small bodies only (tests, blobs); `logs` uses [`fetch_to`].
pub async fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut body = Vec::new();
        fetch_to(&url, timeout, &mut body)?;
        Ok(body)
    })
    .await
    .map_err(|e| Error::Runtime(format!("log download task failed: {e}")))?
}

fn check_hash(url: &str, actual: &str) -> Result<()> {
    if let Some(expected) = blossom_hash(url) {
        if actual != expected {
            return Err(Error::Runtime(format!(
                "log integrity check failed: {} names sha256 {expected} but the body hashes to {actual}; nothing printed",
                crate::text::clip(url, 200)
            )));
        }
    }
    Ok(())
}

/// Check a body against the hash its URL commits to, if any.
pub fn verify(url: &str, body: &[u8]) -> Result<()> {
    check_hash(url, &sha256_hex(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_hash_in_blossom_urls() {
        let h = sha256_hex(b"hello");
        assert_eq!(
            blossom_hash(&format!("https://b.example/{h}")),
            Some(h.clone())
        );
        assert_eq!(
            blossom_hash(&format!("https://b.example/{h}.txt?x=1")),
            Some(h.clone())
        );
        assert_eq!(
            blossom_hash(&format!("http://127.0.0.1:9/blobs/{}", h.to_uppercase())),
            Some(h.clone())
        );
        assert_eq!(blossom_hash("https://logs.example/job/123/stdout"), None);
        assert_eq!(blossom_hash(&format!("https://{h}.example/x")), None);
    }

    #[test]
    fn verify_rejects_a_mismatch() {
        let h = sha256_hex(b"hello");
        assert!(verify(&format!("http://x/{h}"), b"hello").is_ok());
        assert!(verify(&format!("http://x/{h}"), b"tampered").is_err());
        assert!(verify("http://x/plain", b"anything").is_ok());
    }
}
