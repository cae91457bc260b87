//! Kind 5100, the job request: who runs it (`worker`, `p`), what (`cmd`,
//! `args`), the payment, an optional parent, environment and secrets.

use nostr_sdk::prelude::*;

use super::{custom, job_request_kind};

/// Who the `p` tag addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PTag {
    /// The worker (the default: workers subscribe with `#p = self`).
    Worker,
    /// The requesting user (the first Budabit implementation).
    SelfKey,
    /// An explicit pubkey.
    Key(PublicKey),
}

impl PTag {
    /// Resolve to the pubkey that goes in the tag.
    pub fn resolve(&self, worker: &PublicKey, me: &PublicKey) -> PublicKey {
        match self {
            PTag::Worker => *worker,
            PTag::SelfKey => *me,
            PTag::Key(pk) => *pk,
        }
    }
}

/// A job request as jobctl builds it, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The worker that should run the job.
    pub worker: PublicKey,
    /// The pubkey that goes in the `p` tag (usually the worker).
    pub p: PublicKey,
    /// The command, e.g. `act`.
    pub cmd: String,
    /// Every argument, in order, held in one `args` tag.
    pub args: Vec<String>,
    /// The Cashu token; `None` for an unpaid job (no `payment` tag at all).
    pub payment: Option<String>,
    /// Optional parent event (e.g. a 5401 workflow run).
    pub parent: Option<EventId>,
    /// Plain environment variables.
    pub env: Vec<(String, String)>,
    /// Secret environment variables: (key, NIP-44 ciphertext to the worker).
    pub secrets: Vec<(String, String)>,
    /// Human description; empty by default.
    pub content: String,
}

impl JobRequest {
    /// An unpaid request for `cmd` with no arguments, environment or
    /// parent: the starting point the unit tests build on.
    #[cfg(test)]
    pub(crate) fn bare(worker: PublicKey, p: PublicKey, cmd: &str) -> JobRequest {
        JobRequest {
            worker,
            p,
            cmd: cmd.into(),
            args: vec![],
            payment: None,
            parent: None,
            env: vec![],
            secrets: vec![],
            content: String::new(),
        }
    }

    /// The tags, in the spec's order: p, worker, cmd, args, payment, then
    /// e, env, secret.
    pub fn tags(&self) -> Vec<Tag> {
        let mut tags = Vec::with_capacity(5 + self.env.len() + self.secrets.len() + 1);
        tags.push(Tag::public_key(self.p));
        tags.push(custom("worker", vec![self.worker.to_hex()]));
        tags.push(custom("cmd", vec![self.cmd.clone()]));
        tags.push(custom("args", self.args.clone()));
        if let Some(token) = &self.payment {
            tags.push(custom("payment", vec![token.clone()]));
        }
        if let Some(parent) = self.parent {
            tags.push(Tag::event(parent));
        }
        for (k, v) in &self.env {
            tags.push(custom("env", vec![k.clone(), v.clone()]));
        }
        for (k, v) in &self.secrets {
            tags.push(custom("secret", vec![k.clone(), v.clone()]));
        }
        tags
    }

    /// An unsigned builder for the kind 5100 event.
    pub fn to_builder(&self) -> EventBuilder {
        // `allow_self_tagging`: with `--p self` the p tag names the signer,
        // which nostr's builder would otherwise silently drop.
        EventBuilder::new(job_request_kind(), self.content.clone())
            .tags(self.tags())
            .allow_self_tagging()
    }

    /// Read a job request back from a kind 5100 event. Returns `None` when
    /// the event is not a well-formed job request.
    pub fn from_event(event: &Event) -> Option<JobRequest> {
        if event.kind != job_request_kind() {
            return None;
        }
        let mut req = JobRequest {
            worker: event.pubkey,
            p: event.pubkey,
            cmd: String::new(),
            args: Vec::new(),
            payment: None,
            parent: None,
            env: Vec::new(),
            secrets: Vec::new(),
            content: event.content.clone(),
        };
        let (mut worker, mut p) = (None, None);
        for tag in event.tags.iter() {
            let s = tag.as_slice();
            let value = s.get(1).cloned();
            match (s[0].as_str(), value) {
                ("p", Some(v)) if p.is_none() => p = PublicKey::from_hex(&v).ok(),
                ("worker", Some(v)) => worker = PublicKey::from_hex(&v).ok(),
                ("cmd", Some(v)) => req.cmd = v,
                ("args", _) => req.args = s[1..].to_vec(),
                ("payment", Some(v)) => req.payment = Some(v),
                ("e", Some(v)) => req.parent = EventId::from_hex(&v).ok(),
                ("env", Some(k)) => req.env.push((k, s.get(2).cloned().unwrap_or_default())),
                ("secret", Some(k)) => req.secrets.push((k, s.get(2).cloned().unwrap_or_default())),
                _ => {}
            }
        }
        req.worker = worker.or(p)?;
        req.p = p.unwrap_or(req.worker);
        Some(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_util::pk;

    #[test]
    fn tags_follow_the_spec_order() {
        let req = JobRequest {
            worker: pk(1),
            p: pk(1),
            cmd: "act".into(),
            args: vec!["--help".into()],
            payment: Some("cashuAtoken".into()),
            parent: None,
            env: vec![("A".into(), "1".into())],
            secrets: vec![],
            content: String::new(),
        };
        let tags: Vec<Vec<String>> = req.tags().into_iter().map(|t| t.to_vec()).collect();
        assert_eq!(tags[0], vec!["p".to_string(), pk(1).to_hex()]);
        assert_eq!(tags[1], vec!["worker".to_string(), pk(1).to_hex()]);
        assert_eq!(tags[2], vec!["cmd", "act"]);
        assert_eq!(tags[3], vec!["args", "--help"]);
        assert_eq!(tags[4], vec!["payment", "cashuAtoken"]);
        assert_eq!(tags[5], vec!["env", "A", "1"]);
    }

    #[test]
    fn no_args_is_a_bare_args_tag_and_unpaid_has_no_payment() {
        let req = JobRequest::bare(pk(1), pk(2), "bash");
        let tags: Vec<Vec<String>> = req.tags().into_iter().map(|t| t.to_vec()).collect();
        assert_eq!(tags.len(), 4);
        assert_eq!(tags[3], vec!["args"]);
        assert!(tags.iter().all(|t| t[0] != "payment"));
    }

    #[test]
    fn round_trips_through_an_event() {
        let keys = Keys::generate();
        let req = JobRequest {
            worker: pk(3),
            p: pk(3),
            cmd: "act".into(),
            args: vec!["-j".into(), "build".into()],
            payment: Some("cashuBxyz".into()),
            parent: Some(EventId::all_zeros()),
            env: vec![("K".into(), "V".into())],
            secrets: vec![("S".into(), "cipher".into())],
            content: String::new(),
        };
        let event = req.to_builder().sign_with_keys(&keys).expect("sign");
        assert_eq!(JobRequest::from_event(&event), Some(req));
    }

    #[test]
    fn p_tag_may_name_the_signer() {
        let keys = Keys::generate();
        let req = JobRequest::bare(pk(4), keys.public_key(), "act");
        let event = req.to_builder().sign_with_keys(&keys).expect("sign");
        let first = event.tags.first().expect("tags").as_slice().to_vec();
        assert_eq!(first, vec!["p".to_string(), keys.public_key().to_hex()]);
    }
}
