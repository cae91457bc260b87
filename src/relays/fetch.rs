//! Lookups: one query to many relays at once under one deadline, the
//! union of their answers, and which relays answered ([`Reach`]), so that a
//! lookup that timed out never reads as "nothing there". A lookup may stop
//! early once the answers are enough ([`Settle`]).

use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use nostr_sdk::prelude::*;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{connect_error, is_timeout};

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

/// Why one relay's stream of a lookup stopped short.
enum Cut {
    /// The connection attempt gave up on its own timer.
    TimedOut,
    /// Anything else, said in one line.
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
    let (settled, keep) = watch::channel(None::<Instant>);
    let shared = Shared {
        answered: Mutex::new(Vec::new()),
        settled,
        _keep: keep,
        settle: settle.as_ref(),
        deadline: Instant::now() + timeout,
    };
    let filters = &filters;
    let shared = &shared;
    let tasks = urls
        .iter()
        .map(|url| one_relay(client, url, filters, timeout, shared));
    merge(urls, futures::future::join_all(tasks).await, timeout)
}

/// What the relays of one lookup share: the answers so far, and when
/// they became enough.
struct Shared<'a> {
    answered: Mutex<Vec<Event>>,
    settled: watch::Sender<Option<Instant>>,
    _keep: watch::Receiver<Option<Instant>>,
    settle: Option<&'a Settle<'a>>,
    deadline: Instant,
}

impl Shared<'_> {
    /// Ends at the deadline, or `grace` after the answers were enough.
    async fn cutoff(&self) {
        let mut rx = self.settled.subscribe();
        loop {
            let at = (*rx.borrow_and_update())
                .zip(self.settle)
                .map_or(self.deadline, |(t, s)| (t + s.grace).min(self.deadline));
            tokio::select! {
                _ = tokio::time::sleep_until(at) => return,
                changed = rx.changed() => if changed.is_err() {
                    tokio::time::sleep_until(self.deadline).await;
                    return;
                },
            }
        }
    }

    /// Add a relay's full answer; note when the answers became enough.
    fn note_answer(&self, out: &[Event]) {
        let Some(s) = self.settle else { return };
        if let Ok(mut all) = self.answered.lock() {
            all.extend(out.iter().cloned());
            if self.settled.borrow().is_none() && (s.enough)(&all) {
                self.settled.send_replace(Some(Instant::now()));
            }
        }
    }
}

/// One relay's part of a lookup: its events and how it ended.
async fn one_relay(
    client: &Client,
    url: &RelayUrl,
    filters: &[Filter],
    timeout: Duration,
    shared: &Shared<'_>,
) -> (Vec<Event>, Part) {
    let mut out = Vec::new();
    let ended = tokio::select! {
        r = stream_from(client, url, filters, timeout, &mut out) => Some(r),
        _ = shared.cutoff() => None,
    };
    let part = match ended {
        Some(Ok(())) => Part::Answered,
        Some(Err(Cut::TimedOut)) | None => Part::TimedOut,
        Some(Err(Cut::Failed(e))) => Part::Failed(e),
    };
    if matches!(part, Part::Answered) {
        shared.note_answer(&out);
    } else {
        tracing::debug!(relay = %url, "fetch did not complete");
    }
    (out, part)
}

/// Connect if needed and read the relay's stored events until EOSE.
async fn stream_from(
    client: &Client,
    url: &RelayUrl,
    filters: &[Filter],
    timeout: Duration,
    out: &mut Vec<Event>,
) -> Result<(), Cut> {
    let relay = client
        .relay(url)
        .await
        .map_err(|e| Cut::Failed(e.to_string()))?;
    super::ensure_connected(&relay, timeout)
        .await
        .map_err(|e| {
            // A connect that gave up on its own timer is a timeout too.
            if is_timeout(&e) {
                Cut::TimedOut
            } else {
                Cut::Failed(connect_error(&e, timeout))
            }
        })?;
    // The pool's own subscription timeout outlives ours, so a stream that
    // ends before our deadline ended because the relay answered.
    let sub_timeout = timeout + Duration::from_secs(1);
    let mut stream = relay
        .stream_events(filters.to_vec(), sub_timeout, ReqExitPolicy::ExitOnEOSE)
        .await
        .map_err(|e| Cut::Failed(e.to_string()))?;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => out.push(ev),
            Err(e) => tracing::debug!(relay = %url, "fetch: {e}"),
        }
    }
    Ok(())
}

/// The union of the relays' events (deduplicated by id) and who answered.
fn merge(urls: &[RelayUrl], parts: Vec<(Vec<Event>, Part)>, timeout: Duration) -> Fetched {
    let mut seen = std::collections::HashSet::new();
    let mut fetched = Fetched {
        reach: Reach {
            budget: timeout,
            ..Reach::default()
        },
        ..Fetched::default()
    };
    for (url, (events, part)) in urls.iter().zip(parts) {
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
