//! The Loom wire contract, whole: every event kind jobctl and its worker
//! exchange, built and parsed in one place, with tags in the order the spec
//! (`loom-protocol.md`) fixes. Pure: no IO, no keys, no clocks; building an
//! [`EventBuilder`] and reading an [`Event`] back.
//!
//! One file per kind: [`request`] (5100), [`status`] (30100), [`result`]
//! (5101), [`ad`] (10100), [`cancel`] (kind 5 and 5102), [`lists`] (the
//! worker's NIP-65 10002 relay list and NIP-51 freelist), and [`input`]
//! (job references and the field checks every request passes).
//!
//! Not here: the journal-local state `unpublished` ([`crate::job_state`])
//! and the client policy windows ([`crate::state::STALE_AFTER_SECS`],
//! [`crate::roster::ONLINE_WINDOW_SECS`]).

use nostr_sdk::prelude::*;

pub mod ad;
pub mod cancel;
pub mod input;
pub mod lists;
pub mod request;
pub mod result;
pub mod status;

pub use ad::{Access, AdSpec, Price, WorkerAd};
pub use cancel::{cancel_kinds, cancel_request, deletion_request, CancelRequest};
pub use input::{check_text, parse_key_value, validate_env_key, validate_job_fields, JobRef};
pub use lists::{
    freelist, freelist_address, list_members, relay_list, relay_list_urls, ListPointer,
};
pub use request::{JobRequest, PTag};
pub use result::{is_url, JobResult, ResultReport};
pub use status::{status_update, StatusUpdate};

/// The job state moved to [`crate::job_state`] (it holds the
/// journal-local `unpublished`); this alias keeps old imports working.
pub use crate::job_state::JobState;

/// Kind 5100: job request (client).
pub const KIND_JOB_REQUEST: u16 = 5100;
/// Kind 5101: job result (worker).
pub const KIND_JOB_RESULT: u16 = 5101;
/// Kind 30100: job status (worker, addressable, `d` = job id).
pub const KIND_JOB_STATUS: u16 = 30100;
/// Kind 10100: worker advertisement (worker, replaceable).
pub const KIND_WORKER_AD: u16 = 10100;
/// Kind 5401: Budabit "Hive CI" workflow run, optional parent of a job.
pub const KIND_WORKFLOW_RUN: u16 = 5401;
/// Loom job cancel (swarmstr's workers listen for it): `e` = job, `p` = worker.
pub const KIND_JOB_CANCEL: u16 = 5102;
/// NIP-65 relay list.
pub const KIND_RELAY_LIST: u16 = 10002;
/// NIP-51 follow set (used as a worker's freelist).
pub const KIND_FOLLOW_SET: u16 = 30000;

/// The kind 5100 as a nostr [`Kind`].
pub fn job_request_kind() -> Kind {
    Kind::Custom(KIND_JOB_REQUEST)
}

/// A custom tag `[name, values...]`.
pub(crate) fn custom(name: &str, values: Vec<String>) -> Tag {
    Tag::custom(TagKind::Custom(name.to_string().into()), values)
}

/// The first value of the first tag named `name`.
pub(crate) fn first_value<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event.tags.iter().find_map(|t| {
        let s = t.as_slice();
        (s.len() >= 2 && s[0] == name).then(|| s[1].as_str())
    })
}

/// The ids of every well-formed `e` tag, in order.
pub(crate) fn e_tags(event: &Event) -> Vec<EventId> {
    event
        .tags
        .iter()
        .filter_map(|t| {
            let s = t.as_slice();
            (s.len() >= 2 && s[0] == "e")
                .then(|| EventId::from_hex(&s[1]).ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_util {
    use nostr_sdk::prelude::*;

    /// A fixed pubkey from one byte.
    pub fn pk(n: u8) -> PublicKey {
        Keys::new(SecretKey::from_slice(&[n; 32]).expect("valid")).public_key()
    }

    /// Sign a builder with fresh keys.
    pub fn sign(b: EventBuilder) -> Event {
        b.sign_with_keys(&Keys::generate()).expect("sign")
    }
}
