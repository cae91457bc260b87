//! Talking to relays: publishing one signed event to many relays at once
//! and reporting each relay's own verdict (accepted, rejected with its
//! reason, or failed with its latency). NIP-42 AUTH is answered with the
//! same key that signed the event. No relay can hold a call past its
//! deadline: every relay runs concurrently under one `timeout_at`.

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

/// A relay client signing AUTH challenges with `keys`.
pub async fn client(keys: &Keys, urls: &[RelayUrl]) -> Client {
    reader(Some(keys), urls, false).await
}

/// A client for reading; `keys` (when there are any) answer NIP-42 AUTH.
/// `persistent` clients reconnect to relays that drop.
pub async fn reader(keys: Option<&Keys>, urls: &[RelayUrl], persistent: bool) -> Client {
    let opts = ClientOptions::new().automatic_authentication(keys.is_some());
    let mut builder = Client::builder().opts(opts);
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
        match tokio::time::timeout(timeout, relay.try_connect(timeout)).await {
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

/// Query every relay concurrently with `filters` (one REQ per relay) until
/// each sends EOSE or `timeout` passes; returns the union, deduplicated by
/// id. Signatures are verified by the relay pool as events arrive. A slow
/// or dead relay only costs its own share: the others are not held up
/// beyond the deadline.
pub async fn fetch(
    client: &Client,
    urls: &[RelayUrl],
    filters: Vec<Filter>,
    timeout: Duration,
) -> Vec<Event> {
    use futures::StreamExt;
    let deadline = Instant::now() + timeout;
    let filters = &filters;
    let tasks = urls.iter().map(|url| async move {
        let mut out = Vec::new();
        let work = async {
            let relay = client.relay(url).await.ok()?;
            if !relay.is_connected() {
                relay.try_connect(timeout).await.ok()?;
            }
            let mut stream = relay
                .stream_events(filters.clone(), timeout, ReqExitPolicy::ExitOnEOSE)
                .await
                .ok()?;
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => out.push(ev),
                    Err(e) => tracing::debug!(relay = %url, "fetch: {e}"),
                }
            }
            Some(())
        };
        if tokio::time::timeout_at(deadline, work).await.is_err() {
            tracing::debug!(relay = %url, "fetch timed out");
        }
        out
    });
    let mut seen = std::collections::HashSet::new();
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .filter(|e| seen.insert(e.id))
        .collect()
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
    if !relay.is_connected() {
        if let Err(e) = relay.try_connect(timeout).await {
            return (RelayStatus::Failed, connect_error(&e, timeout));
        }
    }
    match relay.send_event(event).await {
        Ok(_) => (RelayStatus::Accepted, String::new()),
        Err(nostr_sdk::pool::relay::Error::RelayMessage(msg)) => (RelayStatus::Rejected, msg),
        Err(e) => (RelayStatus::Failed, e.to_string()),
    }
}

fn connect_error(e: &nostr_sdk::pool::relay::Error, timeout: Duration) -> String {
    let s = e.to_string();
    if matches!(e, nostr_sdk::pool::relay::Error::Timeout) || s == "timeout" {
        format!(
            "timed out after {} while connecting",
            crate::config::format_duration(timeout)
        )
    } else if s.is_empty() {
        "cannot connect".into()
    } else {
        format!("cannot connect: {s}")
    }
}

/// How many outcomes are `Accepted`.
pub fn accepted(outcomes: &[RelayOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| o.status == RelayStatus::Accepted)
        .count()
}
