//! Kind 30100, the job status a worker publishes (addressable, `d` = job
//! id): the status word, a message, and optionally `queue_position` and an
//! `error` reason. Built by the worker, read by every follower.

use nostr_sdk::prelude::*;

use super::{custom, first_value, KIND_JOB_STATUS};
use crate::job_state::JobState;

/// A worker's status word, normalised. `unpublished` is jobctl's own
/// local state, never a worker's word: it reads as unknown.
pub fn wire_state(word: &str) -> JobState {
    match JobState::parse(word) {
        JobState::Unpublished => JobState::Unknown,
        s => s,
    }
}

/// The kind 30100 status of `job` (requested by `client`): `state` as the
/// status word, `message` as content. Tags: d, e, p, status.
pub fn status_update(
    job: &EventId,
    client: &PublicKey,
    state: JobState,
    message: &str,
) -> EventBuilder {
    EventBuilder::new(Kind::Custom(KIND_JOB_STATUS), message).tags([
        custom("d", vec![job.to_hex()]),
        Tag::event(*job),
        Tag::public_key(*client),
        custom("status", vec![state.as_str().to_string()]),
    ])
}

/// A kind 30100 status update from a worker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StatusUpdate {
    /// The job (the request's event id).
    pub job: EventId,
    /// Who signed it.
    pub author: PublicKey,
    /// Normalised state.
    pub state: JobState,
    /// The status value as sent.
    pub raw: String,
    /// Human message (`content`).
    pub message: String,
    /// When the worker says it happened.
    pub at: Timestamp,
    /// The status event's own id.
    pub event_id: EventId,
    /// Place in the worker's queue (swarmstr's `queue_position` tag).
    pub queue_position: Option<u64>,
    /// Why it failed: an `error` tag, else "timed out" for `timeout`.
    pub reason: Option<String>,
}

/// Whether a status word is one of the time-limit spellings.
fn is_timeout_word(raw: &str) -> bool {
    matches!(
        raw.trim().to_ascii_lowercase().as_str(),
        "timeout" | "timed_out" | "timed-out"
    )
}

impl StatusUpdate {
    /// Read a status event; `None` if it is not a well-formed one.
    pub fn from_event(event: &Event) -> Option<Self> {
        if event.kind != Kind::Custom(KIND_JOB_STATUS) {
            return None;
        }
        let job = first_value(event, "d")
            .or_else(|| first_value(event, "e"))
            .and_then(|v| EventId::from_hex(v).ok())?;
        let raw = first_value(event, "status").unwrap_or("").to_string();
        let state = wire_state(&raw);
        let reason = first_value(event, "error")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .or_else(|| is_timeout_word(&raw).then(|| "timed out".to_string()));
        Some(StatusUpdate {
            job,
            author: event.pubkey,
            state,
            queue_position: first_value(event, "queue_position")
                .and_then(|v| v.trim().parse().ok()),
            reason,
            raw,
            message: event.content.clone(),
            at: event.created_at,
            event_id: event.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_util::{pk, sign};

    #[test]
    fn status_reads_queue_position_and_timeout_reason() {
        let keys = Keys::generate();
        let job = EventId::all_zeros().to_hex();
        let mk = |word: &str, extra: Vec<Tag>| {
            let mut tags = vec![
                custom("d", vec![job.clone()]),
                custom("e", vec![job.clone()]),
                custom("status", vec![word.into()]),
            ];
            tags.extend(extra);
            let e = EventBuilder::new(Kind::Custom(KIND_JOB_STATUS), "")
                .tags(tags)
                .sign_with_keys(&keys)
                .expect("sign");
            StatusUpdate::from_event(&e).expect("status")
        };
        let s = mk("queued", vec![custom("queue_position", vec!["4".into()])]);
        assert_eq!(
            (s.state, s.queue_position, s.reason),
            (JobState::Queued, Some(4), None)
        );
        let s = mk("timeout", vec![]);
        assert_eq!(s.state, JobState::Failed);
        assert_eq!(s.reason.as_deref(), Some("timed out"));
        let s = mk("error", vec![custom("error", vec!["disk full".into()])]);
        assert_eq!(s.reason.as_deref(), Some("disk full"));
        let s = mk("queued", vec![custom("queue_position", vec!["x".into()])]);
        assert_eq!(s.queue_position, None);
    }

    #[test]
    fn every_wire_state_round_trips() {
        let job = EventId::all_zeros();
        for st in JobState::ALL {
            let e = sign(status_update(&job, &pk(1), st, "msg"));
            let s = StatusUpdate::from_event(&e).expect("status");
            let want = if st == JobState::Unpublished {
                JobState::Unknown
            } else {
                st
            };
            assert_eq!((s.job, s.state, s.raw.as_str()), (job, want, st.as_str()));
            assert_eq!(s.message, "msg");
            let tags: Vec<Vec<String>> = e.tags.iter().map(|t| t.as_slice().to_vec()).collect();
            assert_eq!(tags[0], vec!["d".to_string(), job.to_hex()]);
            assert_eq!(tags[2], vec!["p".to_string(), pk(1).to_hex()]);
        }
    }
}
