//! A small content-addressed blob store served over HTTP/1.1 (Blossom
//! style: `GET /<sha256>` returns the body whose sha256 that is). The
//! reference worker keeps job logs here; `jobctl logs` verifies them
//! against the hash in the URL. `PUT /upload` takes BUD-02 authorised
//! uploads ([`crate::blossom`] checks them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::logs::sha256_hex;

/// Largest request head read before answering 400.
const MAX_HEAD: usize = 8 * 1024;

/// Blobs on disk under `dir`, named by their sha256.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// A store in `dir` (created, 0700).
    pub fn open(dir: &Path) -> Result<BlobStore> {
        crate::keys::create_private_dir(dir)?;
        Ok(BlobStore {
            dir: dir.to_path_buf(),
        })
    }

    /// Store `body`; returns its sha256 (hex).
    pub fn put(&self, body: &[u8]) -> Result<String> {
        let hash = sha256_hex(body);
        let path = self.dir.join(&hash);
        if !path.exists() {
            let tmp = self.dir.join(format!("{hash}.tmp"));
            std::fs::write(&tmp, body)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| Error::io(format!("cannot store blob {hash}"), e))?;
        }
        Ok(hash)
    }

    /// The body stored under `hash`, if any.
    pub fn get(&self, hash: &str) -> Option<Vec<u8>> {
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        std::fs::read(self.dir.join(hash.to_ascii_lowercase())).ok()
    }
}

/// A running blob server.
pub struct BlobServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl BlobServer {
    /// Serve `store` on `addr` (port 0 picks one).
    pub async fn start(store: BlobStore, addr: SocketAddr) -> Result<BlobServer> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("blob server address", e))?;
        let base = format!("http://{local}");
        let served = base.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_conn(sock, store.clone(), served.clone()));
            }
        });
        Ok(BlobServer { base, task })
    }

    /// The URL of a stored blob.
    pub fn url(&self, hash: &str) -> String {
        format!("{}/{hash}", self.base)
    }
}

/// A request head: method, path, and the headers uploads need.
struct Head {
    method: String,
    path: String,
    content_length: Option<usize>,
    authorization: Option<String>,
    content_type: Option<String>,
    expect_continue: bool,
}

fn parse_head(head: &str) -> Head {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let mut h = Head {
        method: first.next().unwrap_or("").to_string(),
        path: first.next().unwrap_or("/").to_string(),
        content_length: None,
        authorization: None,
        content_type: None,
        expect_continue: false,
    };
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => h.content_length = v.parse().ok(),
            "authorization" => h.authorization = Some(v),
            "content-type" => h.content_type = Some(v),
            "expect" => h.expect_continue = v.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    h
}

/// Answer one connection: `GET`/`HEAD /<sha256>`, and BUD-02 `PUT /upload`
/// (see [`crate::blossom::serve_upload`]).
async fn serve_conn(mut sock: tokio::net::TcpStream, store: BlobStore, base: String) {
    let _ = sock.set_nodelay(true);
    let mut buf = vec![0u8; MAX_HEAD];
    let mut n = 0;
    let head_end = loop {
        match sock.read(&mut buf[n..]).await {
            Ok(0) | Err(_) => return,
            Ok(k) => n += k,
        }
        if let Some(i) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if n == buf.len() {
            break n;
        }
    };
    let head = parse_head(&String::from_utf8_lossy(&buf[..head_end]));
    let resp = if head.method == "PUT" && head.path.split('?').next() == Some("/upload") {
        upload(&mut sock, &store, &base, &head, buf[head_end..n].to_vec()).await
    } else {
        get(&store, &head)
    };
    let _ = sock.write_all(&resp).await;
    let _ = sock.shutdown().await;
}

fn get(store: &BlobStore, head: &Head) -> Vec<u8> {
    let hash = head
        .path
        .trim_start_matches('/')
        .split(['.', '?'])
        .next()
        .unwrap_or("");
    match (head.method.as_str(), store.get(hash)) {
        ("GET", Some(body)) | ("HEAD", Some(body)) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if head.method == "GET" {
                r.extend_from_slice(&body);
            }
            r
        }
        ("GET", None) | ("HEAD", None) => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
        _ => b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    }
}

/// Read an upload's body (`Content-Length` bytes, `first` already read)
/// and answer it.
async fn upload(
    sock: &mut tokio::net::TcpStream,
    store: &BlobStore,
    base: &str,
    head: &Head,
    mut body: Vec<u8>,
) -> Vec<u8> {
    use crate::blossom::{Reply, MAX_UPLOAD_BYTES};
    let refuse = |status, why: &str| Reply {
        status,
        body: String::new(),
        reason: Some(why.to_string()),
    };
    let Some(len) = head.content_length else {
        return refuse(400, "Content-Length required").to_http();
    };
    if len > MAX_UPLOAD_BYTES {
        return refuse(413, "blob too large").to_http();
    }
    // curl waits for this before sending a large body.
    if head.expect_continue && body.is_empty() {
        let _ = sock.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }
    let mut chunk = vec![0u8; 64 * 1024];
    while body.len() < len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return refuse(400, "body shorter than Content-Length").to_http(),
            Ok(k) => body.extend_from_slice(&chunk[..k]),
        }
    }
    body.truncate(len);
    crate::blossom::serve_upload(
        store,
        base,
        head.authorization.as_deref(),
        head.content_type.as_deref(),
        &body,
        nostr_sdk::Timestamp::now(),
    )
    .to_http()
}

impl Drop for BlobServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn serves_what_it_stores_and_logs_verifies_it() {
        let dir = tempfile::tempdir().expect("dir");
        let store = BlobStore::open(&dir.path().join("blobs")).expect("store");
        let hash = store.put(b"hello log\n").expect("put");
        let server = BlobServer::start(store, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("server");
        let body = crate::logs::fetch(&server.url(&hash), Duration::from_secs(5))
            .await
            .expect("fetch");
        assert_eq!(body, b"hello log\n");
        let missing =
            crate::logs::fetch(&server.url(&"0".repeat(64)), Duration::from_secs(5)).await;
        assert!(missing.is_err());
    }
}
