//! Relay fixtures: real nostr-relay-builder `LocalRelay`s on 127.0.0.1
//! (port chosen free, inspectable in-memory store), write policies that
//! reject or rate-limit, ports that refuse or never answer, and `publish`
//! to put signed events on relays over real websockets.

use std::net::SocketAddr;
use std::sync::Arc;

use nostr_relay_builder::prelude::*;

use super::RT;

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
