//! Cancelling a job: the NIP-09 deletion (kind 5, `e` = job, `k` = 5100)
//! and the Loom cancel (kind 5102, `e` = job, `p` = worker), which
//! swarmstr's workers listen for. Both built here; a worker reads either
//! as a [`CancelRequest`].

use nostr_sdk::prelude::*;

use super::{custom, e_tags, KIND_JOB_CANCEL, KIND_JOB_REQUEST};

/// The two kinds a cancel comes as: NIP-09 deletion (5), Loom cancel (5102).
pub fn cancel_kinds() -> [Kind; 2] {
    [Kind::EventDeletion, Kind::Custom(KIND_JOB_CANCEL)]
}

/// A kind 5102 cancel of `job` addressed to `worker`, `reason` as content.
pub fn cancel_request(job: &EventId, worker: &PublicKey, reason: &str) -> EventBuilder {
    EventBuilder::new(Kind::Custom(KIND_JOB_CANCEL), reason)
        .tags([Tag::event(*job), Tag::public_key(*worker)])
}

/// A NIP-09 deletion (kind 5) of job request `job`, `reason` as content.
pub fn deletion_request(job: &EventId, reason: &str) -> EventBuilder {
    EventBuilder::new(Kind::EventDeletion, reason).tags([
        Tag::event(*job),
        custom("k", vec![KIND_JOB_REQUEST.to_string()]),
    ])
}

/// A cancel as a worker reads it: who asks, for which jobs. Only a job's
/// own author may cancel it; checking that is the reader's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    /// Who signed it.
    pub author: PublicKey,
    /// The jobs it names (`e` tags).
    pub jobs: Vec<EventId>,
    /// Kind 5102 (Loom) rather than kind 5 (NIP-09).
    pub loom: bool,
}

impl CancelRequest {
    /// Whether `event` is a cancel: kind 5 or kind 5102.
    pub fn is_cancel(event: &Event) -> bool {
        event.kind == Kind::EventDeletion || event.kind == Kind::Custom(KIND_JOB_CANCEL)
    }

    /// Read a cancel; `None` when the kind is neither.
    pub fn from_event(event: &Event) -> Option<CancelRequest> {
        Self::is_cancel(event).then(|| CancelRequest {
            author: event.pubkey,
            jobs: e_tags(event),
            loom: event.kind == Kind::Custom(KIND_JOB_CANCEL),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_util::pk;

    #[test]
    fn both_cancels_round_trip() {
        let keys = Keys::generate();
        let job = EventId::all_zeros();
        let loom = cancel_request(&job, &pk(1), "stop")
            .sign_with_keys(&keys)
            .expect("sign");
        let c = CancelRequest::from_event(&loom).expect("cancel");
        assert_eq!(
            (c.author, c.jobs.clone(), c.loom),
            (keys.public_key(), vec![job], true)
        );
        assert_eq!(loom.content, "stop");
        let nip09 = deletion_request(&job, "")
            .sign_with_keys(&keys)
            .expect("sign");
        let c = CancelRequest::from_event(&nip09).expect("cancel");
        assert_eq!((c.jobs, c.loom), (vec![job], false));
        let k: Vec<String> = nip09.tags.iter().nth(1).expect("k").as_slice().to_vec();
        assert_eq!(k, vec!["k", "5100"]);
        let other = EventBuilder::new(Kind::TextNote, "")
            .sign_with_keys(&keys)
            .expect("sign");
        assert!(CancelRequest::from_event(&other).is_none());
    }
}
