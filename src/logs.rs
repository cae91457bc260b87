//! Job logs: downloading a result's stdout/stderr over HTTP(S) and, when
//! the URL is content addressed (Blossom: a 64-hex sha256 in the path),
//! verifying the body against it before a single byte is handed out.

use std::time::Duration;

use nostr_sdk::hashes::{sha256, Hash};

use crate::error::{Error, Result};

/// Largest log body accepted.
pub const MAX_LOG_BYTES: usize = 256 * 1024 * 1024;

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

/// Download `url` and verify it when content addressed.
pub async fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::Runtime(format!("log URL `{url}` is not http(s)")));
    }
    let req = bitreq::get(url)
        .with_timeout(timeout.as_secs().max(1))
        .with_max_body_size(Some(MAX_LOG_BYTES))
        .with_max_redirects(5);
    let resp = tokio::time::timeout(timeout, req.send_async())
        .await
        .map_err(|_| Error::Runtime(format!("GET {url}: timed out")))?
        .map_err(|e| Error::Runtime(format!("GET {url}: {e}")))?;
    if !(200..300).contains(&resp.status_code) {
        return Err(Error::Runtime(format!(
            "GET {url}: HTTP {} {}",
            resp.status_code, resp.reason_phrase
        )));
    }
    let body = resp.into_bytes();
    verify(url, &body)?;
    Ok(body)
}

/// Check a body against the hash its URL commits to, if any.
pub fn verify(url: &str, body: &[u8]) -> Result<()> {
    if let Some(expected) = blossom_hash(url) {
        let actual = sha256_hex(body);
        if actual != expected {
            return Err(Error::Runtime(format!(
                "log integrity check failed: {url} names sha256 {expected} but the body hashes to {actual}; nothing printed"
            )));
        }
    }
    Ok(())
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
