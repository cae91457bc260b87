//! What the worker missed while it was down, and cancels. On start it
//! looks back `catch_up` seconds for jobs addressed to it that are still
//! open; a job with a non-terminal status from it was interrupted by a
//! crash. Cancels (NIP-09 kind 5 or Loom kind 5102) from a job's own
//! author mark queued jobs cancelled.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use nostr_sdk::prelude::*;

use super::shared::Shared;
use super::take::Arrival;
use crate::job_state::JobState;
use crate::protocol::{
    cancel_kinds, job_request_kind, CancelRequest, StatusUpdate, KIND_JOB_RESULT, KIND_JOB_STATUS,
};

/// How long the catch-up queries may take, per query.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// What this worker (and the jobs' authors) said about the jobs found.
#[derive(Default)]
struct Marks {
    /// A result or a terminal status from this worker.
    terminal: HashSet<EventId>,
    /// A non-terminal status from this worker: taken, then interrupted.
    taken: HashSet<EventId>,
    /// Cancelled by the job's own author.
    deleted: HashSet<EventId>,
}

/// Jobs addressed to this worker published in the `catch_up` window before
/// `now` that are still open: no result and no terminal status from this
/// worker. Jobs their author deleted (NIP-09) meanwhile get `cancelled`
/// (nothing was taken); jobs with a non-terminal status from this worker
/// were interrupted by a crash and come back as [`Arrival::Interrupted`].
pub(super) async fn catch_up(shared: &Shared, now: Timestamp) -> Vec<(Event, Arrival)> {
    let window = shared.cfg.catch_up;
    if window == 0 {
        return Vec::new();
    }
    let since = Timestamp::from(now.as_secs().saturating_sub(window));
    let mut jobs = fetch_jobs(shared, since, now).await;
    if jobs.is_empty() {
        return Vec::new();
    }
    let marks = fetch_marks(shared, &jobs).await;
    jobs.sort_by_key(|j| j.created_at);
    let mut out = Vec::new();
    for job in jobs {
        if !shared.first_sight(job.id) || marks.terminal.contains(&job.id) {
            continue;
        }
        if marks.deleted.contains(&job.id) && !marks.taken.contains(&job.id) {
            let msg = "cancelled before it started: nothing was taken";
            shared.report_status(&job, JobState::Cancelled, msg).await;
            continue;
        }
        let arrival = if marks.taken.contains(&job.id) {
            Arrival::Interrupted
        } else {
            Arrival::New
        };
        out.push((job, arrival));
    }
    if !out.is_empty() {
        tracing::info!("catching up on {} job(s) published while down", out.len());
    }
    out
}

/// The well-signed job requests addressed to this worker in the window.
async fn fetch_jobs(shared: &Shared, since: Timestamp, now: Timestamp) -> Vec<Event> {
    let me = shared.keys.public_key();
    let filter = Filter::new()
        .kind(job_request_kind())
        .pubkey(me)
        .since(since)
        .until(now);
    let mut jobs = crate::relays::fetch(
        &shared.client,
        &shared.relays,
        vec![filter],
        CATCH_UP_TIMEOUT,
    )
    .await;
    jobs.retain(|j| j.verify().is_ok());
    jobs
}

/// This worker's statuses and results for `jobs`, and their cancels.
async fn fetch_marks(shared: &Shared, jobs: &[Event]) -> Marks {
    let me = shared.keys.public_key();
    let ids: Vec<EventId> = jobs.iter().map(|j| j.id).collect();
    let authors: HashMap<EventId, PublicKey> = jobs.iter().map(|j| (j.id, j.pubkey)).collect();
    let mut marks = Marks::default();
    for chunk in ids.chunks(100) {
        let filters = vec![
            Filter::new()
                .kinds([Kind::Custom(KIND_JOB_STATUS), Kind::Custom(KIND_JOB_RESULT)])
                .author(me)
                .events(chunk.iter().copied()),
            Filter::new()
                .kinds(cancel_kinds())
                .events(chunk.iter().copied()),
        ];
        let found =
            crate::relays::fetch(&shared.client, &shared.relays, filters, CATCH_UP_TIMEOUT).await;
        for ev in found {
            mark(&mut marks, &ev, &me, &authors);
        }
    }
    marks
}

/// Sort one event into the marks.
fn mark(marks: &mut Marks, ev: &Event, me: &PublicKey, authors: &HashMap<EventId, PublicKey>) {
    if let Some(cancel) = CancelRequest::from_event(ev) {
        for id in cancel.jobs {
            if authors.get(&id) == Some(&cancel.author) {
                marks.deleted.insert(id);
            }
        }
        return;
    }
    if ev.pubkey != *me {
        return; // not ours
    }
    let terminal = ev.kind == Kind::Custom(KIND_JOB_RESULT)
        || StatusUpdate::from_event(ev).is_some_and(|s| s.state.is_terminal());
    for id in ev.tags.event_ids().copied() {
        if terminal {
            marks.terminal.insert(id);
        } else {
            marks.taken.insert(id);
        }
    }
}

/// Mark the jobs a cancel names as cancelled, when they wait in the queue
/// and the cancel comes from their own author.
pub(super) fn handle_cancel(shared: &Shared, cancel: &CancelRequest) {
    let queued = shared.queued.lock().map(|q| q.clone()).unwrap_or_default();
    for id in &cancel.jobs {
        // Only the job's own author may cancel it.
        if queued.get(id) == Some(&cancel.author) {
            if let Ok(mut c) = shared.cancelled.lock() {
                c.insert(*id);
            }
        }
    }
}
