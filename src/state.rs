//! A job's state, resolved from whatever the relays hand us, in whatever
//! order: only events signed by the job's worker count (others are
//! dropped and logged at debug); duplicates are ignored; the newest status
//! by `created_at` wins; a result beats any status; a job with neither is
//! `pending`, and `stale` after 72 hours. Pure: no IO, time is passed in.

use std::collections::BTreeMap;

use nostr_sdk::prelude::*;
use serde::Serialize;

use crate::payment::PaymentToken;
use crate::protocol::{JobRequest, JobResult, JobState, StatusUpdate};

/// A job pending longer than this (72 hours) is stale: a client policy,
/// not part of the wire.
pub const STALE_AFTER_SECS: u64 = 72 * 3600;

/// Something new that a tracker accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A status update that is now the newest.
    Status(StatusUpdate),
    /// The result.
    Result(JobResult),
}

/// Everything known about one job.
#[derive(Debug, Clone)]
pub struct JobTracker {
    /// The job id.
    pub id: EventId,
    /// The signed request, once seen.
    pub request: Option<Event>,
    statuses: BTreeMap<(Timestamp, EventId), StatusUpdate>,
    result: Option<JobResult>,
    /// Worker events that arrived before the request told us who the worker is.
    early: Vec<Event>,
    /// The local journal says no relay has accepted the request yet.
    pub unpublished: bool,
}

impl JobTracker {
    /// A tracker for `id` that knows nothing yet.
    pub fn new(id: EventId) -> Self {
        JobTracker {
            id,
            request: None,
            statuses: BTreeMap::new(),
            result: None,
            early: Vec::new(),
            unpublished: false,
        }
    }

    /// The parsed request.
    pub fn job(&self) -> Option<JobRequest> {
        self.request.as_ref().and_then(JobRequest::from_event)
    }

    /// The worker, from the request's `worker` tag.
    pub fn worker(&self) -> Option<PublicKey> {
        self.job().map(|j| j.worker)
    }

    /// Feed one event (request, status or result; anything else is
    /// ignored). Returns what it changed, in order: feeding the request can
    /// release updates that arrived before it.
    pub fn ingest(&mut self, event: &Event) -> Vec<Update> {
        if event.id == self.id {
            if self.request.is_none() && JobRequest::from_event(event).is_some() {
                self.request = Some(event.clone());
                let early = std::mem::take(&mut self.early);
                return early.iter().flat_map(|e| self.ingest(e)).collect();
            }
            return Vec::new();
        }
        let Some(worker) = self.worker() else {
            if self.early.len() < 1024 && !self.early.iter().any(|e| e.id == event.id) {
                self.early.push(event.clone());
            }
            return Vec::new();
        };
        if event.pubkey != worker {
            tracing::debug!(
                job = %self.id, event = %event.id, author = %event.pubkey,
                "ignoring a status/result not signed by the job's worker (forgery?)"
            );
            return Vec::new();
        }
        if let Some(s) = StatusUpdate::from_event(event) {
            if s.job != self.id {
                return Vec::new();
            }
            let newest_before = self.statuses.keys().next_back().copied();
            let key = (s.at, s.event_id);
            if self.statuses.insert(key, s.clone()).is_some() {
                return Vec::new(); // duplicate
            }
            if self.result.is_none() && newest_before.is_none_or(|k| key > k) {
                return vec![Update::Status(s)];
            }
            tracing::debug!(job = %self.id, status = %s.raw, "older status arrived late");
            return Vec::new();
        }
        if let Some(r) = JobResult::from_event(event) {
            if r.job != self.id {
                return Vec::new();
            }
            let newer = match &self.result {
                None => true,
                Some(old) => (r.at, r.event_id) > (old.at, old.event_id),
            };
            if newer {
                let first = self.result.is_none();
                self.result = Some(r.clone());
                if first {
                    return vec![Update::Result(r)];
                }
            }
        }
        Vec::new()
    }

    /// The newest trusted status.
    pub fn latest_status(&self) -> Option<&StatusUpdate> {
        self.statuses.values().next_back()
    }

    /// Every trusted status, oldest first.
    pub fn timeline(&self) -> impl Iterator<Item = &StatusUpdate> {
        self.statuses.values()
    }

    /// Everything known, in order: every status oldest first, then the
    /// result (what a watch replays and the journal records).
    pub fn known_updates(&self) -> Vec<Update> {
        let statuses = self.timeline().cloned().map(Update::Status);
        statuses
            .chain(self.result.clone().map(Update::Result))
            .collect()
    }

    /// The result, if any.
    pub fn result(&self) -> Option<&JobResult> {
        self.result.as_ref()
    }

    /// Result, else newest status, else pending.
    pub fn state(&self) -> JobState {
        if let Some(r) = &self.result {
            return r.state();
        }
        match self.latest_status() {
            Some(s) => s.state,
            None if self.unpublished => JobState::Unpublished,
            None => JobState::Pending,
        }
    }

    /// Why the job failed, when a worker said so: the result's `error` tag,
    /// else (no result) the newest status's reason (its `error` tag, or
    /// "timed out" for `timeout`). `None` for a job that did not fail.
    pub fn reason(&self) -> Option<String> {
        if let Some(r) = &self.result {
            if r.success {
                return None;
            }
            return r.error.clone();
        }
        let s = self.latest_status()?;
        match s.state {
            JobState::Success => None,
            _ => s.reason.clone(),
        }
    }

    /// The place in the worker's queue, while the newest status gives one
    /// and the job is not finished.
    pub fn queue_position(&self) -> Option<u64> {
        if self.result.is_some() {
            return None;
        }
        let s = self.latest_status()?;
        (!s.state.is_terminal())
            .then_some(s.queue_position)
            .flatten()
    }

    /// Pending for longer than 72 hours at `now`.
    pub fn is_stale(&self, now: Timestamp) -> bool {
        self.state() == JobState::Pending
            && self.request.as_ref().is_some_and(|r| {
                now.as_secs().saturating_sub(r.created_at.as_secs()) > STALE_AFTER_SECS
            })
    }

    /// A flat summary for tables and JSON.
    pub fn view(&self, now: Timestamp) -> JobView {
        let job = self.job();
        let payment = job
            .as_ref()
            .and_then(|j| j.payment.as_deref())
            .and_then(|t| PaymentToken::parse(t).ok());
        let latest = self.latest_status();
        JobView {
            id: self.id.to_hex(),
            found: self.request.is_some(),
            author: self.request.as_ref().map(|r| r.pubkey.to_hex()),
            created_at: self.request.as_ref().map(|r| r.created_at.as_secs()),
            worker: job.as_ref().map(|j| j.worker.to_hex()),
            cmd: job.as_ref().map(|j| j.cmd.clone()),
            args: job.as_ref().map(|j| j.args.clone()).unwrap_or_default(),
            state: self.state(),
            reason: self.reason(),
            queue_position: self.queue_position(),
            stale: self.is_stale(now),
            message: latest.map(|s| s.message.clone()).unwrap_or_default(),
            updated_at: self
                .result
                .as_ref()
                .map(|r| r.at.as_secs())
                .or(latest.map(|s| s.at.as_secs())),
            exit_code: self.result.as_ref().and_then(|r| r.exit_code),
            duration: self.result.as_ref().and_then(|r| r.duration),
            stdout: self.result.as_ref().and_then(|r| r.stdout.clone()),
            stderr: self.result.as_ref().and_then(|r| r.stderr.clone()),
            change: self
                .result
                .as_ref()
                .and_then(|r| r.change.as_deref())
                .and_then(|t| PaymentToken::parse(t).ok())
                .map(|t| t.info().clone()),
            change_sent: self.result.as_ref().is_some_and(|r| r.change.is_some()),
            amount: payment.as_ref().map(|t| t.info().amount),
            unit: payment.as_ref().map(|t| t.info().unit.clone()),
            mint: payment.as_ref().map(|t| t.info().mint.clone()),
        }
    }
}

/// A job flattened for display. Tokens appear only as amounts.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Job id (hex).
    pub id: String,
    /// Whether the request itself was found.
    pub found: bool,
    /// Who requested it.
    pub author: Option<String>,
    /// Request time (unix seconds).
    pub created_at: Option<u64>,
    /// Worker (hex).
    pub worker: Option<String>,
    /// Command.
    pub cmd: Option<String>,
    /// Arguments.
    pub args: Vec<String>,
    /// Resolved state.
    pub state: JobState,
    /// The worker's reason for a failure (`error` tag, or "timed out").
    pub reason: Option<String>,
    /// Place in the worker's queue, while queued.
    pub queue_position: Option<u64>,
    /// Pending for more than 72 hours.
    pub stale: bool,
    /// The newest status message.
    pub message: String,
    /// Time of the newest status or result.
    pub updated_at: Option<u64>,
    /// Exit code from the result.
    pub exit_code: Option<i64>,
    /// Run time in seconds.
    pub duration: Option<f64>,
    /// stdout URL.
    pub stdout: Option<String>,
    /// stderr URL.
    pub stderr: Option<String>,
    /// Change handed back (amount, unit, mint; never the token).
    pub change: Option<crate::payment::TokenInfo>,
    /// Whether the worker handed back a change token at all (decodable or
    /// not); not in the JSON.
    #[serde(skip)]
    pub change_sent: bool,
    /// Amount paid.
    pub amount: Option<u64>,
    /// Unit of the payment.
    pub unit: Option<String>,
    /// Mint of the payment.
    pub mint: Option<String>,
}

impl JobView {
    /// A view of job `id` in `state` that knows nothing else yet (not
    /// found, no request fields); callers fill in what they know.
    pub fn blank(id: String, state: JobState) -> JobView {
        JobView {
            id,
            found: false,
            author: None,
            created_at: None,
            worker: None,
            cmd: None,
            args: Vec::new(),
            state,
            reason: None,
            queue_position: None,
            stale: false,
            message: String::new(),
            updated_at: None,
            exit_code: None,
            duration: None,
            stdout: None,
            stderr: None,
            change: None,
            change_sent: false,
            amount: None,
            unit: None,
            mint: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::{JobRequest, KIND_JOB_RESULT, KIND_JOB_STATUS};

    fn tag(name: &'static str, v: &str) -> Tag {
        Tag::custom(TagKind::Custom(name.into()), [v.to_string()])
    }

    /// A signed `act` request from `user` to `worker` (for tests across
    /// the crate).
    pub(crate) fn act_request(user: &Keys, worker: &Keys, req: JobRequest) -> Event {
        JobRequest {
            worker: worker.public_key(),
            p: worker.public_key(),
            cmd: "act".into(),
            ..req
        }
        .to_builder()
        .sign_with_keys(user)
        .expect("sign")
    }

    /// A request with nothing but its worker.
    pub(crate) fn bare() -> JobRequest {
        let k = Keys::generate().public_key();
        JobRequest::bare(k, k, "")
    }

    fn setup() -> (Keys, Keys, Event) {
        let (user, worker) = (Keys::generate(), Keys::generate());
        let ev = act_request(&user, &worker, bare());
        (user, worker, ev)
    }

    fn status(by: &Keys, job: EventId, s: &str, at: u64) -> Event {
        EventBuilder::new(Kind::Custom(KIND_JOB_STATUS), "msg")
            .tags([tag("d", &job.to_hex()), Tag::event(job), tag("status", s)])
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(by)
            .expect("sign")
    }

    fn result(by: &Keys, job: EventId, code: &str, at: u64) -> Event {
        EventBuilder::new(Kind::Custom(KIND_JOB_RESULT), "")
            .tags([Tag::event(job), tag("exit_code", code)])
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(by)
            .expect("sign")
    }

    #[test]
    fn newest_status_wins_and_result_beats_status() {
        let (_u, w, req) = setup();
        let mut t = JobTracker::new(req.id);
        assert!(t.ingest(&req).is_empty());
        assert_eq!(t.state(), JobState::Pending);
        assert_eq!(t.ingest(&status(&w, req.id, "running", 20)).len(), 1);
        // An older one arriving late changes nothing.
        assert!(t.ingest(&status(&w, req.id, "queued", 10)).is_empty());
        assert_eq!(t.state(), JobState::Running);
        assert_eq!(t.timeline().count(), 2);
        assert_eq!(t.ingest(&result(&w, req.id, "1", 30)).len(), 1);
        // A status after the result does not override it.
        t.ingest(&status(&w, req.id, "running", 40));
        assert_eq!(t.state(), JobState::Failed);
    }

    #[test]
    fn forgeries_and_duplicates_are_ignored() {
        let (_u, w, req) = setup();
        let forger = Keys::generate();
        let mut t = JobTracker::new(req.id);
        t.ingest(&req);
        assert!(t.ingest(&result(&forger, req.id, "0", 10)).is_empty());
        assert_eq!(t.state(), JobState::Pending);
        let s = status(&w, req.id, "queued", 5);
        assert_eq!(t.ingest(&s).len(), 1);
        assert!(t.ingest(&s).is_empty());
    }

    #[test]
    fn events_before_the_request_are_held_then_judged() {
        let (_u, w, req) = setup();
        let forger = Keys::generate();
        let mut t = JobTracker::new(req.id);
        assert!(t.ingest(&result(&forger, req.id, "0", 10)).is_empty());
        assert!(t.ingest(&status(&w, req.id, "running", 9)).is_empty());
        let released = t.ingest(&req);
        assert_eq!(released.len(), 1);
        assert_eq!(t.state(), JobState::Running);
    }

    #[test]
    fn reasons_come_from_the_result_error_or_a_timeout_status() {
        let (_u, w, req) = setup();
        let mut t = JobTracker::new(req.id);
        t.ingest(&req);
        let queued = EventBuilder::new(Kind::Custom(KIND_JOB_STATUS), "")
            .tags([
                tag("d", &req.id.to_hex()),
                tag("status", "queued"),
                tag("queue_position", "2"),
            ])
            .custom_created_at(Timestamp::from(5))
            .sign_with_keys(&w)
            .expect("sign");
        t.ingest(&queued);
        assert_eq!((t.queue_position(), t.reason()), (Some(2), None));
        t.ingest(&status(&w, req.id, "timeout", 6));
        assert_eq!(t.state(), JobState::Failed);
        assert_eq!(t.queue_position(), None);
        assert_eq!(t.reason().as_deref(), Some("timed out"));
        let r = EventBuilder::new(Kind::Custom(KIND_JOB_RESULT), "")
            .tags([
                Tag::event(req.id),
                tag("success", "false"),
                tag("error", "not whitelisted"),
            ])
            .custom_created_at(Timestamp::from(7))
            .sign_with_keys(&w)
            .expect("sign");
        t.ingest(&r);
        let v = t.view(Timestamp::from(8));
        assert_eq!(v.reason.as_deref(), Some("not whitelisted"));
        assert_eq!(v.state, JobState::Failed);
    }

    #[test]
    fn unknown_status_and_staleness() {
        let (_u, w, req) = setup();
        let mut t = JobTracker::new(req.id);
        t.ingest(&req);
        let later = Timestamp::from(req.created_at.as_secs() + STALE_AFTER_SECS + 1);
        assert!(t.is_stale(later));
        t.ingest(&status(&w, req.id, "teleporting", 5));
        assert_eq!(t.state(), JobState::Unknown);
        assert!(!t.is_stale(later));
    }
}
