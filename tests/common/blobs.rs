//! A real HTTP/1.1 blob server on 127.0.0.1 for result logs.

use std::sync::Arc;

use super::RT;

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
