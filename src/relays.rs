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

/// Add relays to a client's pool (one already there is left as it is).
pub async fn add_relays(client: &Client, urls: &[RelayUrl]) {
    for url in urls {
        let _ = client
            .pool()
            .add_relay(url.clone(), relay_options(false))
            .await;
    }
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

/// Which relays answered a lookup: a lookup that timed out must not read
/// as "nothing there".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Relays that answered (EOSE, or closed the subscription).
    pub answered: usize,
    /// Relays still silent when the lookup's time was up.
    pub timed_out: Vec<RelayUrl>,
    /// Relays that could not be reached, with why.
    pub failed: Vec<(RelayUrl, String)>,
    /// The time the lookup had.
    pub budget: Duration,
}

impl Reach {
    /// Relays asked.
    pub fn asked(&self) -> usize {
        self.answered + self.timed_out.len() + self.failed.len()
    }

    /// Every relay answered: an empty result means "not there".
    pub fn complete(&self) -> bool {
        self.timed_out.is_empty() && self.failed.is_empty()
    }

    /// No relay answered at all.
    pub fn none_answered(&self) -> bool {
        self.answered == 0
    }

    /// Some relay ran out of time.
    pub fn any_timed_out(&self) -> bool {
        !self.timed_out.is_empty()
    }

    /// One line on the relays that did not answer, e.g. `1 of 2 relay(s)
    /// did not answer (ws://a: timed out; ws://b: cannot connect)`; empty
    /// when every relay answered.
    pub fn describe(&self) -> String {
        if self.complete() {
            return String::new();
        }
        let mut why: Vec<String> = self
            .timed_out
            .iter()
            .map(|u| format!("{u}: timed out"))
            .collect();
        why.extend(self.failed.iter().map(|(u, e)| format!("{u}: {e}")));
        let shown = why.len().min(3);
        let more = why.len() - shown;
        why.truncate(shown);
        format!(
            "{} of {} relay(s) did not answer ({}{})",
            self.timed_out.len() + self.failed.len(),
            self.asked(),
            why.join("; "),
            if more > 0 {
                format!("; {more} more")
            } else {
                String::new()
            }
        )
    }
}

/// Events from a lookup, and which relays answered it.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The union of what the relays sent, deduplicated by id.
    pub events: Vec<Event>,
    /// Who answered.
    pub reach: Reach,
}

/// How one relay's part of a lookup ended.
enum Part {
    Answered,
    TimedOut,
    Failed(String),
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
    fetch_reach(client, urls, filters, timeout).await.events
}

/// [`fetch`], also saying which relays answered, timed out or failed.
pub async fn fetch_reach(
    client: &Client,
    urls: &[RelayUrl],
    filters: Vec<Filter>,
    timeout: Duration,
) -> Fetched {
    fetch_settling(client, urls, filters, timeout, None).await
}

/// When a lookup may stop early: once the relays that answered sent
/// `enough` (e.g. every job request asked for), the others get at most
/// `grace` more. For lookups whose gaps are filled later anyway (a watch
/// replays stored events live) or that need one event (a past job).
pub struct Settle<'a> {
    /// How long the slower relays still get.
    pub grace: Duration,
    /// Whether the events so far are enough.
    pub enough: &'a (dyn Fn(&[Event]) -> bool + Sync),
}

/// [`fetch_reach`], stopping early as `settle` says. Relays cut off by it
/// count as timed out.
pub async fn fetch_settling(
    client: &Client,
    urls: &[RelayUrl],
    filters: Vec<Filter>,
    timeout: Duration,
    settle: Option<Settle<'_>>,
) -> Fetched {
    use futures::StreamExt;
    let deadline = Instant::now() + timeout;
    // Events of the relays that answered, and when they became enough.
    let answered: std::sync::Mutex<Vec<Event>> = std::sync::Mutex::new(Vec::new());
    let (settled, _keep) = tokio::sync::watch::channel(None::<Instant>);
    let settle = &settle;
    let answered = &answered;
    let settled = &settled;
    // The pool's own subscription timeout outlives ours, so a stream that
    // ends before our deadline ended because the relay answered.
    let sub_timeout = timeout + Duration::from_secs(1);
    let filters = &filters;
    let tasks = urls.iter().map(|url| async move {
        let mut out = Vec::new();
        let work = async {
            let relay = client.relay(url).await.map_err(|e| e.to_string())?;
            if !relay.is_connected() {
                relay
                    .try_connect(timeout)
                    .await
                    .map_err(|e| connect_error(&e, timeout))?;
            }
            let mut stream = relay
                .stream_events(filters.clone(), sub_timeout, ReqExitPolicy::ExitOnEOSE)
                .await
                .map_err(|e| e.to_string())?;
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => out.push(ev),
                    Err(e) => tracing::debug!(relay = %url, "fetch: {e}"),
                }
            }
            Ok::<(), String>(())
        };
        // Ends at the deadline, or `grace` after the answers were enough.
        let cutoff = async {
            let mut rx = settled.subscribe();
            loop {
                let at = (*rx.borrow_and_update())
                    .zip(settle.as_ref())
                    .map_or(deadline, |(t, s)| (t + s.grace).min(deadline));
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => return,
                    changed = rx.changed() => if changed.is_err() {
                        tokio::time::sleep_until(deadline).await;
                        return;
                    },
                }
            }
        };
        let ended = tokio::select! {
            r = work => Some(r),
            _ = cutoff => None,
        };
        let part = match ended {
            Some(Ok(())) => Part::Answered,
            // A connect that gave up on its own timer is a timeout too.
            Some(Err(e)) if e.starts_with("timed out") => Part::TimedOut,
            Some(Err(e)) => Part::Failed(e),
            None => Part::TimedOut,
        };
        if let (Part::Answered, Some(s)) = (&part, settle.as_ref()) {
            if let Ok(mut all) = answered.lock() {
                all.extend(out.iter().cloned());
                if settled.borrow().is_none() && (s.enough)(&all) {
                    settled.send_replace(Some(Instant::now()));
                }
            }
        }
        if !matches!(part, Part::Answered) {
            tracing::debug!(relay = %url, "fetch did not complete");
        }
        (out, part)
    });
    let mut seen = std::collections::HashSet::new();
    let mut fetched = Fetched {
        reach: Reach {
            budget: timeout,
            ..Reach::default()
        },
        ..Fetched::default()
    };
    for (url, (events, part)) in urls.iter().zip(futures::future::join_all(tasks).await) {
        fetched
            .events
            .extend(events.into_iter().filter(|e| seen.insert(e.id)));
        match part {
            Part::Answered => fetched.reach.answered += 1,
            Part::TimedOut => fetched.reach.timed_out.push(url.clone()),
            Part::Failed(e) => fetched.reach.failed.push((url.clone(), e)),
        }
    }
    fetched
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
