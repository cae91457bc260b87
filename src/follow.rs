//! Following jobs from the worker's side of the protocol: loading jobs
//! (request, statuses, result) in a few batched filters, listing a user's
//! jobs page by page, reading worker advertisements, and watching jobs
//! live until they reach a terminal state. Rendering is the caller's.

use std::collections::HashMap;
use std::time::Duration;

use nostr_sdk::prelude::*;
use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::protocol::{
    job_request_kind, list_members, ListPointer, WorkerAd, KIND_JOB_RESULT, KIND_JOB_STATUS,
    KIND_WORKER_AD,
};
use crate::relays::{self, Reach};
use crate::state::{JobTracker, Update};

/// How long slower relays still get once the faster ones had what a
/// settling lookup needs.
pub const SETTLE_GRACE: Duration = Duration::from_millis(1000);

/// Job ids per status/result filter: keeps each filter small enough for
/// relays that cap filter sizes, while 1,000 jobs still take 10 filters.
const IDS_PER_FILTER: usize = 100;

/// Filters for the statuses and results of `ids`.
pub fn worker_side_filters(ids: &[EventId]) -> Vec<Filter> {
    ids.chunks(IDS_PER_FILTER)
        .map(|chunk| {
            Filter::new()
                .kinds([Kind::Custom(KIND_JOB_STATUS), Kind::Custom(KIND_JOB_RESULT)])
                .events(chunk.iter().copied())
                // Statuses are addressable (one per worker and job), results
                // one per job; leave room for forgeries and duplicates.
                .limit(chunk.len() * 8)
        })
        .collect()
}

/// Route worker-side events to their trackers by the job id they name.
fn route(
    trackers: &mut [JobTracker],
    index: &HashMap<EventId, usize>,
    event: &Event,
) -> Vec<(usize, Update)> {
    let target = if event.kind == job_request_kind() {
        index.get(&event.id).copied()
    } else {
        event.tags.iter().find_map(|t| {
            let s = t.as_slice();
            if s.len() >= 2 && (s[0] == "e" || s[0] == "d") {
                EventId::from_hex(&s[1])
                    .ok()
                    .and_then(|id| index.get(&id).copied())
            } else {
                None
            }
        })
    };
    match target {
        Some(i) => trackers[i]
            .ingest(event)
            .into_iter()
            .map(|u| (i, u))
            .collect(),
        None => Vec::new(),
    }
}

fn index_of(trackers: &[JobTracker]) -> HashMap<EventId, usize> {
    trackers
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id, i))
        .collect()
}

/// The filters for jobs by id: their requests, statuses and results.
fn job_filters(ids: &[EventId]) -> Vec<Filter> {
    let mut filters = vec![Filter::new()
        .kind(job_request_kind())
        .ids(ids.iter().copied())
        .limit(ids.len())];
    filters.extend(worker_side_filters(ids));
    filters
}

/// Load jobs by id: their requests, statuses and results in one round of
/// batched filters, saying which relays answered (a job missing after a
/// lookup that timed out is not known to be missing). Trackers come back
/// in the order of `ids`.
pub async fn load_jobs_reach(
    client: &Client,
    urls: &[RelayUrl],
    ids: &[EventId],
    timeout: Duration,
) -> (Vec<JobTracker>, Reach) {
    load(client, urls, ids, timeout, None).await
}

/// [`load_jobs_reach`] that stops waiting for slower relays `grace` after
/// the relays that answered had every request: for a watch (it replays the
/// statuses live) and for looking up a past job (only its request counts).
pub async fn load_jobs_settling(
    client: &Client,
    urls: &[RelayUrl],
    ids: &[EventId],
    timeout: Duration,
    grace: Duration,
) -> (Vec<JobTracker>, Reach) {
    load(client, urls, ids, timeout, Some(grace)).await
}

async fn load(
    client: &Client,
    urls: &[RelayUrl],
    ids: &[EventId],
    timeout: Duration,
    grace: Option<Duration>,
) -> (Vec<JobTracker>, Reach) {
    let mut trackers: Vec<JobTracker> = ids.iter().map(|id| JobTracker::new(*id)).collect();
    let enough = |events: &[Event]| {
        ids.iter().all(|id| {
            events
                .iter()
                .any(|e| e.id == *id && e.kind == job_request_kind())
        })
    };
    let settle = grace.map(|grace| relays::Settle {
        grace,
        enough: &enough,
    });
    let fetched = relays::fetch_settling(client, urls, job_filters(ids), timeout, settle).await;
    ingest_all(&mut trackers, fetched.events);
    (trackers, fetched.reach)
}

/// Feed events to trackers: requests first, so that worker events can be
/// judged against the request's worker.
fn ingest_all(trackers: &mut [JobTracker], mut events: Vec<Event>) {
    let index = index_of(trackers);
    events.sort_by_key(|e| (e.kind != job_request_kind(), e.created_at));
    for e in &events {
        route(trackers, &index, e);
    }
}

/// Which jobs `list` wants.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// The requester.
    pub author: Option<PublicKey>,
    /// Only jobs created at or after.
    pub since: Option<Timestamp>,
    /// Only jobs created at or before.
    pub until: Option<Timestamp>,
    /// At most this many requests.
    pub limit: usize,
}

/// The user's jobs, newest first, each joined with its statuses and
/// result, saying which relays answered the request lookup.
pub async fn list_jobs_reach(
    client: &Client,
    urls: &[RelayUrl],
    q: &ListQuery,
    timeout: Duration,
) -> (Vec<JobTracker>, Reach) {
    let deadline = Instant::now() + timeout;
    let mut f = Filter::new().kind(job_request_kind()).limit(q.limit);
    if let Some(a) = q.author {
        f = f.author(a);
    }
    if let Some(s) = q.since {
        f = f.since(s);
    }
    if let Some(u) = q.until {
        f = f.until(u);
    }
    // Half the time for the requests: a silent relay must not leave no
    // time at all for their statuses.
    let fetched = relays::fetch_reach(client, urls, vec![f], timeout / 2).await;
    let mut reach = fetched.reach;
    reach.budget = timeout;
    let mut requests = fetched.events;
    requests.retain(|e| e.kind == job_request_kind());
    requests.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    requests.truncate(q.limit);
    let ids: Vec<EventId> = requests.iter().map(|e| e.id).collect();
    let mut trackers: Vec<JobTracker> = ids.iter().map(|id| JobTracker::new(*id)).collect();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let worker_side = if ids.is_empty() || remaining.is_zero() {
        Vec::new()
    } else {
        relays::fetch(client, urls, worker_side_filters(&ids), remaining).await
    };
    requests.extend(worker_side);
    ingest_all(&mut trackers, requests);
    (trackers, reach)
}

/// The newest advertisement of each worker (all workers, or `authors`).
pub async fn workers(
    client: &Client,
    urls: &[RelayUrl],
    authors: Option<Vec<PublicKey>>,
    timeout: Duration,
) -> Vec<WorkerAd> {
    workers_reach(client, urls, authors, timeout).await.0
}

/// [`workers`], also saying which relays answered.
pub async fn workers_reach(
    client: &Client,
    urls: &[RelayUrl],
    authors: Option<Vec<PublicKey>>,
    timeout: Duration,
) -> (Vec<WorkerAd>, Reach) {
    let mut f = Filter::new().kind(Kind::Custom(KIND_WORKER_AD)).limit(1000);
    if let Some(a) = authors {
        if a.is_empty() {
            return (Vec::new(), Reach::default());
        }
        f = f.authors(a);
    }
    let fetched = relays::fetch_reach(client, urls, vec![f], timeout).await;
    let events = fetched.events;
    let mut newest: HashMap<PublicKey, WorkerAd> = HashMap::new();
    for ad in events.iter().filter_map(WorkerAd::from_event) {
        match newest.get(&ad.pubkey) {
            Some(old) if old.at >= ad.at => {}
            _ => {
                newest.insert(ad.pubkey, ad);
            }
        }
    }
    let mut ads: Vec<WorkerAd> = newest.into_values().collect();
    ads.sort_by(|a, b| b.at.cmp(&a.at).then(a.name.cmp(&b.name)));
    (ads, fetched.reach)
}

/// What a lookup of one worker's advertisement found.
#[derive(Debug, Clone)]
pub enum AdLookup {
    /// The newest advertisement.
    Found(WorkerAd),
    /// Every relay answered and none has one.
    Missing,
    /// No advertisement, and some relay did not answer in time (or could
    /// not be reached): the worker may well have one.
    Unknown(Reach),
}

impl AdLookup {
    /// The advertisement, if one was found.
    pub fn ad(&self) -> Option<&WorkerAd> {
        match self {
            AdLookup::Found(ad) => Some(ad),
            _ => None,
        }
    }

    /// Into the advertisement, if one was found.
    pub fn into_ad(self) -> Option<WorkerAd> {
        match self {
            AdLookup::Found(ad) => Some(ad),
            _ => None,
        }
    }

    /// The error for a step that needs the advertisement (`needed_for`,
    /// e.g. "to pick a mint") when the lookup was cut short, so that it
    /// never reads as "the worker has none": `timed out after {total}
    /// looking up ...` (exit 1), or the relays' failures. `None` when the
    /// ad was found or every relay said it has none.
    pub fn cut_short(&self, total: Duration, needed_for: &str) -> Option<crate::Error> {
        match self {
            AdLookup::Found(_) | AdLookup::Missing => None,
            AdLookup::Unknown(reach) => Some(reach_error(
                reach,
                total,
                &format!("looking up the worker's advertisement {needed_for}"),
            )),
        }
    }
}

/// The newest advertisement of `worker`, telling "none" from "no answer".
pub async fn worker_ad(
    client: &Client,
    urls: &[RelayUrl],
    worker: PublicKey,
    timeout: Duration,
) -> AdLookup {
    let (ads, reach) = workers_reach(client, urls, Some(vec![worker]), timeout).await;
    match ads.into_iter().next() {
        Some(ad) => AdLookup::Found(ad),
        None if reach.complete() => AdLookup::Missing,
        None => AdLookup::Unknown(reach),
    }
}

/// The members (`p` tags) of NIP-51 lists, keyed by the pointer as
/// given (naddr, nevent or `kind:pubkey:d`), fetched in one round. A
/// pointer that does not parse, or whose list no relay had, is absent.
pub async fn list_members_of(
    client: &Client,
    urls: &[RelayUrl],
    pointers: &[String],
    timeout: Duration,
) -> HashMap<String, Vec<PublicKey>> {
    let parsed: Vec<(String, ListPointer)> = pointers
        .iter()
        .filter_map(|p| ListPointer::parse(p).map(|l| (p.clone(), l)))
        .collect();
    let mut out = HashMap::new();
    if parsed.is_empty() || urls.is_empty() {
        return out;
    }
    let filters = parsed.iter().map(|(_, l)| l.filter()).collect();
    let events = relays::fetch(client, urls, filters, timeout).await;
    for (raw, l) in &parsed {
        // The newest version of an addressable list wins.
        let newest = events
            .iter()
            .filter(|e| l.matches(e))
            .max_by_key(|e| (e.created_at, e.id));
        if let Some(e) = newest {
            out.insert(raw.clone(), list_members(e));
        }
    }
    out
}

/// The reason `me` may send `ad`'s worker a job without paying, if any:
/// `me` is a member of the worker's freelist (`freelist_event`, a NIP-51
/// list whose `p` tags are the members), fetched within `deadline`.
/// `None` when the worker has no freelist, it cannot be fetched in time,
/// or `me` is not on it.
pub async fn free_for(
    client: &Client,
    urls: &[RelayUrl],
    ad: &WorkerAd,
    me: &PublicKey,
    deadline: &Deadline,
) -> Option<String> {
    let pointer = ad.access.freelist_event.clone()?;
    if deadline.expired() {
        return None;
    }
    let lists = list_members_of(
        client,
        urls,
        std::slice::from_ref(&pointer),
        deadline.remaining(),
    )
    .await;
    free_reason(ad, me, &lists)
}

/// [`free_for`] against lists already fetched with [`list_members_of`].
pub fn free_reason(
    ad: &WorkerAd,
    me: &PublicKey,
    lists: &HashMap<String, Vec<PublicKey>>,
) -> Option<String> {
    let pointer = ad.access.freelist_event.as_ref()?;
    if !lists.get(pointer)?.contains(me) {
        return None;
    }
    let limit = ad
        .access
        .freelist_timeout
        .map(|t| format!(", free runs up to {t} s"))
        .unwrap_or_default();
    Some(format!(
        "your key is on the worker's freelist ({}){limit}",
        crate::text::clip(&crate::text::sanitize(pointer), 80)
    ))
}

/// How long a watch waits for a result after a terminal status.
pub const RESULT_GRACE: Duration = Duration::from_millis(1500);

/// How a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// Every job reached a terminal state.
    Finished,
    /// The deadline passed first.
    TimedOut,
    /// The relay pool shut down (every connection gone for good).
    Closed,
}

/// Watch `trackers` (whose requests are already loaded) live on `urls`
/// until every job is terminal or `deadline` passes. `on_ready` runs once
/// the subscriptions are sent; `on_update` sees each accepted update as it
/// arrives (including stored ones that the subscription replays).
pub async fn watch<R, F>(
    client: &Client,
    trackers: &mut [JobTracker],
    deadline: Option<Instant>,
    on_ready: R,
    mut on_update: F,
) -> WatchEnd
where
    R: FnOnce(),
    F: FnMut(&JobTracker, &Update),
{
    let index = index_of(trackers);
    let all_done = |ts: &[JobTracker]| ts.iter().all(|t| t.state().is_terminal());
    if all_done(trackers) {
        return WatchEnd::Finished;
    }
    let ids: Vec<EventId> = trackers.iter().map(|t| t.id).collect();
    let mut rx = client.notifications();
    for f in worker_side_filters(&ids) {
        if let Err(e) = client.subscribe(f.limit(ids.len() * 8), None).await {
            tracing::warn!("cannot subscribe: {e}");
        }
    }
    on_ready();
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    // A terminal status usually has a result right behind it (exit code,
    // logs, change): once every job is terminal, linger briefly for those.
    let mut grace: Option<Instant> = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let linger = async {
            match grace {
                Some(g) => tokio::time::sleep_until(g).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut sleep => return WatchEnd::TimedOut,
            _ = linger => return WatchEnd::Finished,
            n = rx.recv() => match n {
                Ok(note) => {
                    let Some(event) = live_event(note).filter(|e| seen.insert(e.id)) else {
                        continue;
                    };
                    for (i, u) in route(trackers, &index, &event) {
                        on_update(&trackers[i], &u);
                    }
                    if all_done(trackers) {
                        if trackers.iter().all(|t| t.result().is_some()) {
                            return WatchEnd::Finished;
                        }
                        grace.get_or_insert_with(|| Instant::now() + RESULT_GRACE);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("missed {n} relay notifications");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return WatchEnd::Closed;
                }
            },
        }
    }
}

/// The event a pool notification carries. The pool announces an event as
/// `Event` only the first time it sees it: one that arrived first on
/// another subscription (the job lookup's, between its EOSE and its CLOSE,
/// which is when a fast worker's result lands) comes to the live
/// subscription only as a relay `Message`. Both count.
fn live_event(note: RelayPoolNotification) -> Option<Event> {
    match note {
        RelayPoolNotification::Event { event, .. } => Some(*event),
        RelayPoolNotification::Message {
            message: RelayMessage::Event { event, .. },
            ..
        } => Some(event.into_owned()),
        _ => None,
    }
}

/// The error for a lookup (`doing`, e.g. "looking up job 1a2b") that did
/// not reach every relay: `timed out after {total} ...` when a relay ran
/// out of time, else why the relays could not be reached. One line.
pub fn reach_error(reach: &Reach, total: Duration, doing: &str) -> crate::Error {
    if reach.any_timed_out() {
        // A lookup that had only its share of the deadline says so.
        let tenths = |d: Duration| (d.as_millis() + 50) / 100;
        let took = if reach.budget.is_zero() || tenths(reach.budget) >= tenths(total) {
            crate::deadline::timed_out_msg(total, doing)
        } else {
            let b = tenths(reach.budget);
            let budget = if b % 10 == 0 {
                format!("{}s", b / 10)
            } else {
                format!("{}.{}s", b / 10, b % 10)
            };
            format!(
                "timed out after {budget} (its share of --timeout {}) {doing}",
                crate::config::format_duration(total)
            )
        };
        crate::Error::Runtime(format!("{took}: {}", reach.describe()))
    } else {
        crate::Error::Relay(format!("cannot finish {doing}: {}", reach.describe()))
    }
}

#[cfg(test)]
mod tests;
