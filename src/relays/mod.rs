//! Talking to relays: publishing one signed event to many relays at once
//! and reporting each relay's own verdict (accepted, rejected with its
//! reason, or failed with its latency). NIP-42 AUTH is answered with the
//! same key that signed the event. No relay can hold a call past its
//! deadline: every relay runs concurrently under one `timeout_at`.
//! Lookups (many relays, one deadline, who answered) are in [`fetch`].

mod fetch;

pub use fetch::{fetch, fetch_reach, fetch_settling, Fetched, Reach, Settle};

use std::fmt;
use std::time::Duration;

use nostr_sdk::prelude::*;
use serde::Serialize;
use tokio::time::Instant;

/// How one relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayStatus {
    /// The relay answered `OK true`.
    Accepted,
    /// The relay answered `OK false` with a reason.
    Rejected,
    /// Could not connect, connection dropped, or timed out.
    Failed,
}

impl fmt::Display for RelayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RelayStatus::Accepted => "accepted",
            RelayStatus::Rejected => "rejected",
            RelayStatus::Failed => "failed",
        })
    }
}

impl std::str::FromStr for RelayStatus {
    type Err = String;

    /// The [`Display`](fmt::Display) text back (as the journal stores it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accepted" => Ok(RelayStatus::Accepted),
            "rejected" => Ok(RelayStatus::Rejected),
            "failed" => Ok(RelayStatus::Failed),
            _ => Err(format!("`{s}` is not a relay status")),
        }
    }
}

/// One relay's outcome for one publish.
#[derive(Debug, Clone, Serialize)]
pub struct RelayOutcome {
    /// The relay.
    pub url: String,
    /// Accepted, rejected or failed.
    pub status: RelayStatus,
    /// The relay's own message (`blocked: ...`), or the failure.
    pub message: String,
    /// Time from the start of the publish to this relay's verdict.
    pub latency_ms: u64,
}

/// Options for one-shot CLI work (no reconnection loops, no pings) or for
/// long watches (reconnect when a relay drops).
fn relay_options(persistent: bool) -> RelayOptions {
    RelayOptions::default()
        .reconnect(persistent)
        .ping(persistent)
}

/// Notification buffers of a pool that carries one job (its lookups,
/// its publish): a handful of messages in flight per relay. The pool's
/// defaults (2,048 per relay, 4,096 for the pool) are allocated and
/// zeroed up front, which costs a one-shot dispatch more memory and time
/// than everything else it does.
const ONE_JOB_BUFFER: usize = 64;

/// Event ids a one-job pool remembers to drop duplicates (the events of
/// its few lookups). The default pool remembers 35,000, in a table made
/// and zeroed up front.
const ONE_JOB_SEEN: usize = 1024;

/// Add relays to a client's pool (one already there is left as it is).
pub async fn add_relays(client: &Client, urls: &[RelayUrl]) {
    add_with(client, urls, relay_options(false)).await;
}

/// [`add_relays`] for a [`one_job`] pool.
pub async fn add_one_job_relays(client: &Client, urls: &[RelayUrl]) {
    let opts = relay_options(false).notification_channel_size(ONE_JOB_BUFFER);
    add_with(client, urls, opts).await;
}

async fn add_with(client: &Client, urls: &[RelayUrl], opts: RelayOptions) {
    for url in urls {
        let _ = client.pool().add_relay(url.clone(), opts.clone()).await;
    }
}

/// A client for one job: its lookups and its publish, AUTH answered with
/// `keys`, with small notification buffers ([`ONE_JOB_BUFFER`]). Not for
/// batches or long reads, whose many events in flight need the defaults.
pub async fn one_job(keys: &Keys, urls: &[RelayUrl]) -> Client {
    let pool = nostr_sdk::pool::RelayPoolOptions::new().notification_channel_size(ONE_JOB_BUFFER);
    let opts = ClientOptions::new()
        .automatic_authentication(true)
        .pool(pool);
    // Every field given: `Client::builder()` would first make (and zero)
    // the default in-memory database only to have it replaced.
    let seen = MemoryDatabaseOptions {
        events: false,
        max_events: Some(ONE_JOB_SEEN),
    };
    let client = ClientBuilder {
        signer: Some(keys.clone().into_nostr_signer()),
        websocket_transport: std::sync::Arc::new(crate::transport::NoDelayTransport),
        admit_policy: None,
        database: MemoryDatabase::with_opts(seen).into_nostr_database(),
        gossip: None,
        monitor: None,
        opts,
    }
    .build();
    add_one_job_relays(&client, urls).await;
    client
}

/// A relay client signing AUTH challenges with `keys`.
pub async fn client(keys: &Keys, urls: &[RelayUrl]) -> Client {
    reader(Some(keys), urls, false).await
}

/// A client for reading; `keys` (when there are any) answer NIP-42 AUTH.
/// `persistent` clients reconnect to relays that drop.
pub async fn reader(keys: Option<&Keys>, urls: &[RelayUrl], persistent: bool) -> Client {
    let opts = ClientOptions::new().automatic_authentication(keys.is_some());
    let mut builder = Client::builder()
        .opts(opts)
        .websocket_transport(crate::transport::NoDelayTransport);
    if let Some(k) = keys {
        builder = builder.signer(k.clone());
    }
    let client = builder.build();
    for url in urls {
        // Adding a URL that is already in the pool is a no-op.
        let _ = client
            .pool()
            .add_relay(url.clone(), relay_options(persistent))
            .await;
    }
    client
}

/// Connect to every relay concurrently, each bounded by `timeout`.
/// Returns the relays that could not be reached, with why.
pub async fn connect_all(
    client: &Client,
    urls: &[RelayUrl],
    timeout: Duration,
) -> Vec<(RelayUrl, String)> {
    let tasks = urls.iter().map(|url| async move {
        let relay = client.relay(url).await.map_err(|e| e.to_string())?;
        if relay.is_connected() {
            return Ok(());
        }
        match tokio::time::timeout(timeout, ensure_connected(&relay, timeout)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(connect_error(&e, timeout)),
            Err(_) => Err(format!(
                "timed out after {} while connecting",
                crate::config::format_duration(timeout)
            )),
        }
    });
    let results = futures::future::join_all(tasks).await;
    urls.iter()
        .zip(results)
        .filter_map(|(u, r)| r.err().map(|e| (u.clone(), e)))
        .inspect(|(u, e)| tracing::warn!(relay = %u, "relay unavailable: {e}"))
        .collect()
}

/// Connect `relay` within `timeout`, also when another task of the same
/// pool is connecting it right now (a dispatch's lookups, its publish and
/// its early connect share one pool): that task's attempt is waited for,
/// and tried again here if it failed, so the error is this call's own.
pub async fn ensure_connected(
    relay: &Relay,
    timeout: Duration,
) -> std::result::Result<(), nostr_sdk::pool::relay::Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match relay.status() {
            nostr_sdk::RelayStatus::Connected => return Ok(()),
            nostr_sdk::RelayStatus::Pending
            | nostr_sdk::RelayStatus::Connecting
            | nostr_sdk::RelayStatus::Disconnected => {}
            // Dialled on a task of its own: a caller dropped half-way (a
            // lookup's cutoff) cannot leave the relay marked "connecting"
            // with nobody connecting it, for the pool's other users.
            _ => {
                let dialing = relay.clone();
                let dial = tokio::spawn(async move { dialing.try_connect(left).await });
                match dial.await {
                    // `Ok` also when another task was connecting it: look
                    // at the status again.
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(nostr_sdk::pool::relay::Error::NotConnected),
                }
            }
        }
        if left.is_zero() {
            return Err(nostr_sdk::pool::relay::Error::Timeout);
        }
        // Short slices: a status change just before the wait began would
        // otherwise be missed until `left` ran out.
        relay
            .wait_for_connection(left.min(Duration::from_millis(20)))
            .await;
    }
}

/// Shut a client down, bounded: a relay stuck mid-handshake cannot hold
/// the command past its deadline.
pub async fn shutdown(client: &Client) {
    if tokio::time::timeout(Duration::from_millis(500), client.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("relay client shutdown timed out");
    }
}

/// Publish `event` to every relay in `urls` concurrently. Never takes
/// longer than `timeout` (plus scheduling noise); every URL gets exactly
/// one outcome, in the order given.
pub async fn publish(
    keys: &Keys,
    event: &Event,
    urls: &[RelayUrl],
    timeout: Duration,
) -> Vec<RelayOutcome> {
    let client = client(keys, urls).await;
    let outcomes = publish_with(&client, event, urls, timeout).await;
    client.shutdown().await;
    outcomes
}

/// [`publish_with`] for a pool connected up front ([`connect_all`]): the
/// relays in `down` could not be reached then and are not dialled again
/// by every job; each gets its connect error as its outcome.
pub async fn publish_reachable(
    client: &Client,
    event: &Event,
    urls: &[RelayUrl],
    timeout: Duration,
    down: &[(RelayUrl, String)],
) -> Vec<RelayOutcome> {
    let is_down = |u: &RelayUrl| down.iter().find(|(d, _)| d == u).map(|(_, e)| e);
    let up: Vec<RelayUrl> = urls
        .iter()
        .filter(|u| is_down(u).is_none())
        .cloned()
        .collect();
    let mut sent = if up.is_empty() {
        Vec::new()
    } else {
        publish_with(client, event, &up, timeout).await
    }
    .into_iter();
    urls.iter()
        .filter_map(|u| match is_down(u) {
            Some(e) => Some(RelayOutcome {
                url: u.to_string(),
                status: RelayStatus::Failed,
                message: e.clone(),
                latency_ms: 0,
            }),
            None => sent.next(),
        })
        .collect()
}

/// Publish through an existing client (so batches share one pool).
pub async fn publish_with(
    client: &Client,
    event: &Event,
    urls: &[RelayUrl],
    timeout: Duration,
) -> Vec<RelayOutcome> {
    let start = Instant::now();
    let deadline = start + timeout;
    let tasks = urls.iter().map(|url| async move {
        let result = tokio::time::timeout_at(deadline, send_one(client, url, event, timeout)).await;
        let latency_ms = start.elapsed().as_millis() as u64;
        let (status, message) = match result {
            Ok(r) => r,
            Err(_) if timeout.is_zero() => (
                RelayStatus::Failed,
                "not tried: the command's --timeout had passed".to_string(),
            ),
            Err(_) => (
                RelayStatus::Failed,
                format!(
                    "timed out after {}",
                    crate::config::format_duration(timeout)
                ),
            ),
        };
        tracing::debug!(relay = %url, %status, %message, latency_ms, "publish outcome");
        RelayOutcome {
            url: url.to_string(),
            status,
            message,
            latency_ms,
        }
    });
    futures::future::join_all(tasks).await
}

async fn send_one(
    client: &Client,
    url: &RelayUrl,
    event: &Event,
    timeout: Duration,
) -> (RelayStatus, String) {
    let relay = match client.relay(url).await {
        Ok(r) => r,
        Err(e) => return (RelayStatus::Failed, e.to_string()),
    };
    if let Err(e) = ensure_connected(&relay, timeout).await {
        return (RelayStatus::Failed, connect_error(&e, timeout));
    }
    match relay.send_event(event).await {
        Ok(_) => (RelayStatus::Accepted, String::new()),
        Err(nostr_sdk::pool::relay::Error::RelayMessage(msg)) => (RelayStatus::Rejected, msg),
        Err(e) => (RelayStatus::Failed, e.to_string()),
    }
}

/// Why a connection failed, in one line (`timed out after …` for a timeout).
fn connect_error(e: &nostr_sdk::pool::relay::Error, timeout: Duration) -> String {
    if is_timeout(e) {
        return format!(
            "timed out after {} while connecting",
            crate::config::format_duration(timeout)
        );
    }
    let s = e.to_string();
    if s.is_empty() {
        "cannot connect".into()
    } else {
        format!("cannot connect: {s}")
    }
}

/// Whether a connection attempt gave up on its own timer: the pool's own
/// timeout, or the websocket transport's (nostr-sdk's default one, or
/// [`crate::transport`]'s), matched by type, never by message text.
fn is_timeout(e: &nostr_sdk::pool::relay::Error) -> bool {
    use nostr_sdk::pool::relay::Error;
    use nostr_sdk::pool::transport::error::TransportError;
    match e {
        Error::Timeout => true,
        Error::Transport(TransportError::Backend(b)) => {
            b.downcast_ref::<async_wsocket::Error>()
                .is_some_and(|w| matches!(w, async_wsocket::Error::Timeout))
                || b.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        }
        _ => false,
    }
}

/// How many outcomes are `Accepted`.
pub fn accepted(outcomes: &[RelayOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| o.status == RelayStatus::Accepted)
        .count()
}

/// Why the relays that did not accept did not, in one line:
/// `ws://a: timed out after 2s; ws://b: blocked: spam`.
pub fn failure_summary(outcomes: &[RelayOutcome]) -> String {
    let why: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status != RelayStatus::Accepted)
        .map(|o| {
            if o.message.is_empty() {
                format!("{}: {}", o.url, o.status)
            } else {
                format!("{}: {}", o.url, o.message)
            }
        })
        .collect();
    if why.is_empty() {
        "every relay accepted".into()
    } else {
        why.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay URL whose port refuses connections.
    fn refused() -> RelayUrl {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("ws://{}", l.local_addr().expect("addr"));
        drop(l);
        RelayUrl::parse(&url).expect("url")
    }

    #[tokio::test]
    async fn relays_down_at_connect_are_not_dialled_again_and_keep_their_place() {
        let (a, b) = (refused(), refused());
        let keys = Keys::generate();
        let client = one_job(&keys, &[a.clone(), b.clone()]).await;
        let event = EventBuilder::text_note("x")
            .sign_with_keys(&keys)
            .expect("sign");
        let down = vec![(b.clone(), "connection refused (earlier)".to_string())];
        let out = publish_reachable(
            &client,
            &event,
            &[a.clone(), b.clone()],
            Duration::from_secs(2),
            &down,
        )
        .await;
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].url.as_str(), out[0].status),
            (a.as_str(), RelayStatus::Failed)
        );
        assert_eq!(out[1].url, b.to_string());
        assert_eq!(out[1].message, "connection refused (earlier)");
        assert_eq!(out[1].latency_ms, 0);
    }

    #[tokio::test]
    async fn concurrent_users_of_one_pool_share_a_connect_and_both_see_its_end() {
        let url = refused();
        let client = one_job(&Keys::generate(), std::slice::from_ref(&url)).await;
        let relay = client.relay(&url).await.expect("relay");
        // The early connect of a dispatch, then two users at once: each
        // ends with an error within its bound (none waits forever on a
        // connect another started).
        relay.connect();
        let t = Duration::from_secs(3);
        let (x, y) = tokio::join!(ensure_connected(&relay, t), ensure_connected(&relay, t));
        assert!(x.is_err() && y.is_err(), "{x:?} {y:?}");
    }

    #[test]
    fn timeouts_are_told_by_type_wherever_the_transport_wraps_them() {
        use nostr_sdk::pool::relay::Error as E;
        use nostr_sdk::pool::transport::error::TransportError as T;
        let io = |k| std::io::Error::new(k, "timeout");
        assert!(is_timeout(&E::Timeout));
        assert!(is_timeout(&E::Transport(T::backend(
            async_wsocket::Error::Timeout
        ))));
        assert!(is_timeout(&E::Transport(T::backend(io(
            std::io::ErrorKind::TimedOut
        )))));
        // Saying "timeout" is not being one.
        assert!(!is_timeout(&E::Transport(T::backend(io(
            std::io::ErrorKind::Other
        )))));
        assert!(!is_timeout(&E::NotConnected));
    }

    fn url(port: u16) -> RelayUrl {
        RelayUrl::parse(&format!("ws://127.0.0.1:{port}")).expect("url")
    }

    #[test]
    fn reach_tells_timed_out_from_answered() {
        let all = Reach {
            answered: 2,
            budget: Duration::from_secs(2),
            ..Reach::default()
        };
        assert!(all.complete() && !all.none_answered() && !all.any_timed_out());
        assert_eq!(all.describe(), "");
        let some = Reach {
            answered: 1,
            timed_out: vec![url(1)],
            failed: vec![(url(2), "cannot connect".into())],
            budget: Duration::from_secs(2),
        };
        assert!(!some.complete() && some.any_timed_out() && !some.none_answered());
        assert_eq!(some.asked(), 3);
        let d = some.describe();
        assert!(d.starts_with("2 of 3 relay(s) did not answer"), "{d}");
        assert!(d.contains("127.0.0.1:1: timed out"), "{d}");
        assert!(d.contains("cannot connect"), "{d}");
        assert!(!d.contains('\n'));
    }

    #[test]
    fn failure_summary_names_each_relay() {
        let o = |status, message: &str| RelayOutcome {
            url: "ws://a".into(),
            status,
            message: message.into(),
            latency_ms: 0,
        };
        assert_eq!(
            failure_summary(&[o(RelayStatus::Accepted, "")]),
            "every relay accepted"
        );
        assert_eq!(
            failure_summary(&[
                o(RelayStatus::Accepted, ""),
                o(RelayStatus::Failed, "timed out after 2s")
            ]),
            "ws://a: timed out after 2s"
        );
    }
}
