//! Blossom (BUD-01/BUD-02): content-addressed blobs on HTTP servers.
//! Client side: an authorised upload (`PUT /upload` with a kind 24242
//! auth event in `Authorization: Nostr <base64>`), answered by a blob
//! descriptor that is checked against the body's sha256; and a download
//! verified against the sha256 it should have. Server side: the check of
//! an upload's auth and the answer, used by [`crate::blobs::BlobServer`]
//! so the reference worker (and the tests) need no outside Blossom.

use std::time::Duration;

use nostr_sdk::nostr::base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use nostr_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blobs::BlobStore;
use crate::error::{Error, Result};
use crate::logs::sha256_hex;

/// Kind 24242: Blossom authorization.
pub const KIND_BLOSSOM_AUTH: u16 = 24242;
/// How long an upload authorization stays valid.
pub const AUTH_TTL: Duration = Duration::from_secs(300);
/// Largest upload the built-in server takes (held in memory).
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// What a Blossom server says about a stored blob (BUD-02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobDescriptor {
    /// Where to GET it.
    pub url: String,
    /// Its sha256 (hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// When it was uploaded (unix seconds).
    #[serde(default)]
    pub uploaded: u64,
}

/// An `http(s)://` server base without a trailing slash.
pub fn check_server(server: &str) -> Result<String> {
    let s = server.trim().trim_end_matches('/');
    let ok = (s.starts_with("http://") || s.starts_with("https://"))
        && url::Url::parse(s).is_ok()
        && !s.contains(['?', '#']);
    if !ok {
        return Err(Error::input(format!(
            "`{}` is not a Blossom server URL (http:// or https://)",
            crate::text::clip(server, 200)
        )));
    }
    Ok(s.to_string())
}

/// A signed upload authorization for the blob `sha256`, valid [`AUTH_TTL`].
pub fn upload_auth(keys: &Keys, sha256: &str, now: Timestamp) -> Result<Event> {
    let expiration = Timestamp::from(now.as_secs() + AUTH_TTL.as_secs());
    let tag = |k: &str, v: String| Tag::custom(TagKind::Custom(k.to_string().into()), [v]);
    EventBuilder::new(Kind::Custom(KIND_BLOSSOM_AUTH), "Upload blob")
        .tags([
            tag("t", "upload".into()),
            tag("x", sha256.to_string()),
            tag("expiration", expiration.as_secs().to_string()),
        ])
        .custom_created_at(now)
        .sign_with_keys(keys)
        .map_err(|e| Error::Runtime(format!("cannot sign the Blossom authorization: {e}")))
}

/// The `Authorization` header value for `auth`.
pub fn auth_header(auth: &Event) -> String {
    format!("Nostr {}", B64.encode(auth.as_json()))
}

/// Why an upload was refused (the server's `X-Reason`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Nostr ...` header.
    #[error("missing `Authorization: Nostr` header")]
    Missing,
    /// Not base64 JSON of a signed event.
    #[error("malformed authorization event")]
    Malformed,
    /// Bad id or signature.
    #[error("invalid authorization signature")]
    BadSignature,
    /// Not kind 24242.
    #[error("authorization is not kind 24242")]
    WrongKind,
    /// Signed in the future.
    #[error("authorization created in the future")]
    FromTheFuture,
    /// No or past `expiration`.
    #[error("authorization expired or has no expiration")]
    Expired,
    /// Not `t` = `upload`.
    #[error("authorization is not for upload")]
    WrongVerb,
    /// No `x` tag naming the body's sha256.
    #[error("authorization does not name this blob's sha256")]
    WrongBlob,
}

fn tag_values<'a>(e: &'a Event, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    e.tags.iter().filter_map(move |t| {
        let s = t.as_slice();
        (s.len() >= 2 && s[0] == name).then(|| s[1].as_str())
    })
}

/// Read an `Authorization` header value into a verified event.
pub fn parse_auth_header(value: &str) -> std::result::Result<Event, AuthError> {
    let b64 = value
        .trim()
        .strip_prefix("Nostr ")
        .ok_or(AuthError::Missing)?;
    let json = B64.decode(b64.trim()).map_err(|_| AuthError::Malformed)?;
    let event = Event::from_json(json).map_err(|_| AuthError::Malformed)?;
    event.verify().map_err(|_| AuthError::BadSignature)?;
    Ok(event)
}

/// Check an upload authorization for the body hashing to `sha256` at
/// `now`; returns the uploader.
pub fn check_upload_auth(
    auth: &Event,
    sha256: &str,
    now: Timestamp,
) -> std::result::Result<PublicKey, AuthError> {
    if auth.kind != Kind::Custom(KIND_BLOSSOM_AUTH) {
        return Err(AuthError::WrongKind);
    }
    if auth.created_at.as_secs() > now.as_secs() + 60 {
        return Err(AuthError::FromTheFuture);
    }
    let exp = tag_values(auth, "expiration")
        .next()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if exp.is_none_or(|e| e <= now.as_secs()) {
        return Err(AuthError::Expired);
    }
    if !tag_values(auth, "t").any(|t| t == "upload") {
        return Err(AuthError::WrongVerb);
    }
    if !tag_values(auth, "x").any(|x| x.eq_ignore_ascii_case(sha256)) {
        return Err(AuthError::WrongBlob);
    }
    Ok(auth.pubkey)
}

fn http_err(doing: &str, e: impl std::fmt::Display) -> Error {
    Error::Runtime(format!(
        "{doing}: {}",
        crate::text::clip(&e.to_string(), 200)
    ))
}

/// Upload `body` to `server` (BUD-02), authorised by `keys`; returns the
/// server's descriptor once it names the body's own sha256.
pub async fn upload(
    server: &str,
    keys: &Keys,
    body: Vec<u8>,
    mime: Option<&str>,
    timeout: Duration,
) -> Result<BlobDescriptor> {
    let base = check_server(server)?;
    let hash = sha256_hex(&body);
    let auth = upload_auth(keys, &hash, Timestamp::now())?;
    let doing = format!("PUT {base}/upload");
    let req = bitreq::put(format!("{base}/upload"))
        .with_header("Authorization", auth_header(&auth))
        .with_header("Content-Type", mime.unwrap_or("application/octet-stream"))
        .with_header("X-SHA-256", hash.clone())
        .with_body(body)
        .with_timeout(timeout.as_secs().max(1));
    let resp = tokio::time::timeout(timeout, req.send_async())
        .await
        .map_err(|_| {
            Error::Runtime(crate::deadline::timed_out_msg(
                timeout,
                &format!("uploading to {base}"),
            ))
        })?
        .map_err(|e| http_err(&doing, e))?;
    if !(200..300).contains(&resp.status_code) {
        let reason = resp.headers.get("x-reason").cloned().unwrap_or_default();
        return Err(Error::Runtime(format!(
            "{doing}: HTTP {} {}",
            resp.status_code,
            crate::text::clip(&crate::text::one_line(&reason), 200)
        )));
    }
    let d: BlobDescriptor = serde_json::from_slice(resp.as_bytes())
        .map_err(|e| http_err(&format!("{doing}: bad blob descriptor"), e))?;
    if !d.sha256.eq_ignore_ascii_case(&hash) {
        return Err(Error::Runtime(format!(
            "{doing}: the server stored sha256 {} but the log hashes to {hash}",
            crate::text::clip(&d.sha256, 80)
        )));
    }
    Ok(d)
}

/// Download `url` and check it against `sha256` (and against the hash
/// its path carries, if any). Small bodies only: held in memory.
pub async fn download(url: &str, sha256: Option<&str>, timeout: Duration) -> Result<Vec<u8>> {
    let body = crate::logs::fetch(url, timeout).await?;
    if let Some(want) = sha256 {
        let got = sha256_hex(&body);
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(Error::Runtime(format!(
                "integrity check failed: {} should hash to {} but hashes to {got}",
                crate::text::clip(url, 200),
                crate::text::clip(want, 80)
            )));
        }
    }
    Ok(body)
}

/// An HTTP answer of the built-in server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body (JSON descriptor on success).
    pub body: String,
    /// `X-Reason` for a refusal.
    pub reason: Option<String>,
}

impl Reply {
    fn refuse(status: u16, reason: impl Into<String>) -> Reply {
        Reply {
            status,
            body: String::new(),
            reason: Some(reason.into()),
        }
    }

    /// The whole HTTP/1.1 response.
    pub fn to_http(&self) -> Vec<u8> {
        let text = match self.status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            413 => "Payload Too Large",
            _ => "Internal Server Error",
        };
        let reason = self
            .reason
            .as_deref()
            .map(|r| format!("X-Reason: {}\r\n", crate::text::one_line(r)))
            .unwrap_or_default();
        format!(
            "HTTP/1.1 {} {text}\r\nContent-Type: application/json\r\n{reason}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.status,
            self.body.len(),
            self.body
        )
        .into_bytes()
    }
}

/// A `PUT /upload` to the built-in server: check the authorization
/// against the body, store it, answer with its descriptor (`base` is the
/// server's own URL).
pub fn serve_upload(
    store: &BlobStore,
    base: &str,
    authorization: Option<&str>,
    mime: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Reply {
    let hash = sha256_hex(body);
    let checked = authorization
        .ok_or(AuthError::Missing)
        .and_then(parse_auth_header)
        .and_then(|auth| check_upload_auth(&auth, &hash, now));
    if let Err(e) = checked {
        return Reply::refuse(401, e.to_string());
    }
    if let Err(e) = store.put(body) {
        tracing::warn!("blob upload: {e}");
        return Reply::refuse(500, "cannot store the blob");
    }
    let d = BlobDescriptor {
        url: format!("{base}/{hash}"),
        sha256: hash,
        size: body.len() as u64,
        mime: mime.map(str::to_string),
        uploaded: now.as_secs(),
    };
    match serde_json::to_string(&d) {
        Ok(body) => Reply {
            status: 200,
            body,
            reason: None,
        },
        Err(_) => Reply::refuse(500, "cannot encode the descriptor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::BlobServer;

    fn now() -> Timestamp {
        Timestamp::from(1_700_000_000)
    }

    #[test]
    fn an_upload_auth_round_trips_and_is_checked() {
        let k = Keys::generate();
        let hash = sha256_hex(b"log");
        let auth = upload_auth(&k, &hash, now()).unwrap();
        let back = parse_auth_header(&auth_header(&auth)).unwrap();
        assert_eq!(back, auth);
        assert_eq!(check_upload_auth(&back, &hash, now()), Ok(k.public_key()));
        let other = sha256_hex(b"other");
        assert_eq!(
            check_upload_auth(&back, &other, now()),
            Err(AuthError::WrongBlob)
        );
        let later = Timestamp::from(now().as_secs() + AUTH_TTL.as_secs() + 1);
        assert_eq!(
            check_upload_auth(&back, &hash, later),
            Err(AuthError::Expired)
        );
        let early = Timestamp::from(now().as_secs() - 3600);
        assert_eq!(
            check_upload_auth(&back, &hash, early),
            Err(AuthError::FromTheFuture)
        );
        assert_eq!(parse_auth_header("Bearer x"), Err(AuthError::Missing));
        assert_eq!(parse_auth_header("Nostr !!!"), Err(AuthError::Malformed));
        let mut json: serde_json::Value = serde_json::from_str(&auth.as_json()).unwrap();
        json["content"] = "changed".into();
        let tampered = format!("Nostr {}", B64.encode(json.to_string()));
        assert!(matches!(
            parse_auth_header(&tampered),
            Err(AuthError::BadSignature | AuthError::Malformed)
        ));
        let note = EventBuilder::text_note("x").sign_with_keys(&k).unwrap();
        assert_eq!(
            check_upload_auth(&note, &hash, now()),
            Err(AuthError::WrongKind)
        );
    }

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            check_server("http://127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9"
        );
        for bad in ["ftp://x", "127.0.0.1:9", "http://x/?a=1", ""] {
            assert_eq!(check_server(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[tokio::test]
    async fn the_blob_server_takes_authorised_uploads_only() {
        let dir = tempfile::tempdir().expect("dir");
        let store = BlobStore::open(&dir.path().join("blobs")).expect("store");
        let server = BlobServer::start(store, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("server");
        let k = Keys::generate();
        let body = b"workflow log\nline 2\n".to_vec();
        let t = Duration::from_secs(5);
        let d = upload(&server.base, &k, body.clone(), Some("text/plain"), t)
            .await
            .expect("upload");
        assert_eq!(d.sha256, sha256_hex(&body));
        assert_eq!(d.size, body.len() as u64);
        assert_eq!(d.url, server.url(&d.sha256));
        assert_eq!(download(&d.url, Some(&d.sha256), t).await.unwrap(), body);
        let wrong = sha256_hex(b"x");
        assert!(download(&d.url, Some(&wrong), t).await.is_err());
        // No auth, or an auth for another blob: 401 with the reason.
        let plain = bitreq::put(format!("{}/upload", server.base))
            .with_body(b"sneaky".to_vec())
            .send_async()
            .await
            .unwrap();
        assert_eq!(plain.status_code, 401);
        assert!(plain
            .headers
            .get("x-reason")
            .is_some_and(|r| r.contains("Authorization")));
        let auth = upload_auth(&k, &sha256_hex(b"other"), Timestamp::now()).unwrap();
        let mismatched = bitreq::put(format!("{}/upload", server.base))
            .with_header("Authorization", auth_header(&auth))
            .with_body(b"sneaky".to_vec())
            .send_async()
            .await
            .unwrap();
        assert_eq!(mismatched.status_code, 401);
        assert!(download(&server.url(&sha256_hex(b"sneaky")), None, t)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn the_blob_server_answers_expect_100_continue_like_curl_wants() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().expect("dir");
        let store = BlobStore::open(&dir.path().join("blobs")).expect("store");
        let server = BlobServer::start(store, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("server");
        let body = vec![b'x'; 200_000];
        let auth = upload_auth(&Keys::generate(), &sha256_hex(&body), Timestamp::now()).unwrap();
        let addr = server.base.trim_start_matches("http://").to_string();
        let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "PUT /upload HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            auth_header(&auth),
            body.len()
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = sock.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 100 Continue"));
        sock.write_all(&body).await.unwrap();
        let mut resp = Vec::new();
        sock.read_to_end(&mut resp).await.unwrap();
        let text = String::from_utf8_lossy(&resp);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains(&sha256_hex(&body)));
    }
}
