//! A job in full, for `show`: its request (environment names, secret
//! names, payment as amount and mint), worker, state, the worker's status
//! timeline, the result and the journal's own timeline, assembled from a
//! tracker, the worker's advertisement and the journal. Serialises to
//! `show --json`; the fields marked `skip` are for the text rendering.

use nostr_sdk::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::journal::TimelineEntry;
use crate::payment::{redact_str, PaymentToken, TokenInfo};
use crate::protocol::{JobState, StatusUpdate, WorkerAd};
use crate::state::{JobTracker, JobView};

/// The job's worker.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRef {
    /// Public key (hex).
    pub hex: String,
    /// Public key (npub).
    pub npub: String,
    /// Its advertised name, when it has one.
    pub name: Option<String>,
    /// Its advertisement, when one was found.
    #[serde(skip)]
    pub ad: Option<WorkerAd>,
}

/// One environment variable of the request.
#[derive(Debug, Clone, Serialize)]
pub struct EnvVar {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
}

/// One status from the worker.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    /// When (unix seconds).
    pub at: u64,
    /// Normalised state.
    pub state: JobState,
    /// The status as sent.
    pub status: String,
    /// The worker's message.
    pub message: String,
    /// Place in the queue.
    pub queue_position: Option<u64>,
    /// The worker's reason.
    pub reason: Option<String>,
}

impl From<&StatusUpdate> for StatusEntry {
    fn from(s: &StatusUpdate) -> Self {
        StatusEntry {
            at: s.at.as_secs(),
            state: s.state,
            status: s.raw.clone(),
            message: s.message.clone(),
            queue_position: s.queue_position,
            reason: s.reason.clone(),
        }
    }
}

/// The worker's result.
#[derive(Debug, Clone, Serialize)]
pub struct ResultEntry {
    /// Whether the job succeeded.
    pub success: bool,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// Run time in seconds.
    pub duration: Option<f64>,
    /// stdout URL (or inline text).
    pub stdout: Option<String>,
    /// stderr URL (or inline text).
    pub stderr: Option<String>,
    /// When (unix seconds).
    pub at: u64,
    /// The worker's error.
    pub error: Option<String>,
    /// Change handed back (never the token).
    pub change: Option<TokenInfo>,
}

/// A job in full.
#[derive(Debug, Clone, Serialize)]
pub struct JobDetail {
    /// Job id (hex).
    pub id: String,
    /// Requester (hex).
    pub author: Option<String>,
    /// Request time (unix seconds).
    pub created_at: Option<u64>,
    /// The worker.
    pub worker: WorkerRef,
    /// Command.
    pub cmd: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<EnvVar>,
    /// Names of the encrypted secrets (never their values).
    pub secret_keys: Vec<String>,
    /// The payment (amount and mint; never the token).
    pub payment: Option<TokenInfo>,
    /// The payment for display: redacted.
    #[serde(skip)]
    pub payment_redacted: Option<String>,
    /// The job this one reruns.
    pub parent: Option<String>,
    /// Resolved state.
    pub state: JobState,
    /// Pending for too long.
    pub stale: bool,
    /// Why it failed.
    pub reason: Option<String>,
    /// Place in the queue.
    pub queue_position: Option<u64>,
    /// The worker's statuses, oldest first.
    pub timeline: Vec<StatusEntry>,
    /// The journal's timeline.
    pub journal: Vec<TimelineEntry>,
    /// The result.
    pub result: Option<ResultEntry>,
    /// The flat view (for the summary line).
    #[serde(skip)]
    pub view: JobView,
}

impl JobDetail {
    /// Assemble the detail of a tracked job at `now`; an event that is no
    /// job request is an error.
    pub fn new(
        t: &JobTracker,
        ad: Option<WorkerAd>,
        journal: Vec<TimelineEntry>,
        now: Timestamp,
    ) -> Result<JobDetail> {
        let job = t
            .job()
            .ok_or_else(|| Error::Runtime(format!("event {} is not a job request", t.id)))?;
        let v = t.view(now);
        Ok(JobDetail {
            id: v.id.clone(),
            author: v.author.clone(),
            created_at: v.created_at,
            worker: WorkerRef {
                hex: job.worker.to_hex(),
                npub: crate::keys::npub(&job.worker),
                name: ad
                    .as_ref()
                    .filter(|a| !a.name.is_empty())
                    .map(|a| a.name.clone()),
                ad,
            },
            env: job
                .env
                .iter()
                .map(|(k, v)| EnvVar {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            secret_keys: job.secrets.iter().map(|(k, _)| k.clone()).collect(),
            payment: job
                .payment
                .as_deref()
                .and_then(|p| PaymentToken::parse(p).ok())
                .map(|p| p.info().clone()),
            payment_redacted: job.payment.as_deref().map(redact_str),
            parent: job.parent.map(|p| p.to_hex()),
            cmd: job.cmd,
            args: job.args,
            state: v.state,
            stale: v.stale,
            reason: v.reason.clone(),
            queue_position: v.queue_position,
            timeline: t.timeline().map(StatusEntry::from).collect(),
            journal,
            result: t.result().map(|r| ResultEntry {
                success: r.success,
                exit_code: r.exit_code,
                duration: r.duration,
                stdout: r.stdout.clone(),
                stderr: r.stderr.clone(),
                at: r.at.as_secs(),
                error: r.error.clone(),
                change: v.change.clone(),
            }),
            view: v,
        })
    }

    /// The names of the environment variables.
    pub fn env_keys(&self) -> Vec<&str> {
        self.env.iter().map(|e| e.key.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::JobRequest;
    use crate::state::tests::{act_request, bare};

    #[test]
    fn json_names_secrets_never_their_values() {
        let (user, worker) = (Keys::generate(), Keys::generate());
        let req = JobRequest {
            args: vec!["-j".into()],
            env: vec![("A".into(), "1".into())],
            secrets: vec![("TOKEN".into(), "hunter2".into())],
            ..bare()
        };
        let ev = act_request(&user, &worker, req);
        let mut t = JobTracker::new(ev.id);
        t.ingest(&ev);
        let d = JobDetail::new(&t, None, Vec::new(), Timestamp::from(0)).expect("detail");
        let j = serde_json::to_value(&d).expect("json");
        assert_eq!(j["secret_keys"], serde_json::json!(["TOKEN"]));
        assert_eq!(j["env"], serde_json::json!([{"key": "A", "value": "1"}]));
        assert_eq!(j["worker"]["name"], serde_json::Value::Null);
        assert_eq!(j["state"], "pending");
        assert!(j.get("view").is_none() && j.get("payment_redacted").is_none());
        assert!(!j.to_string().contains("hunter2"));
        assert_eq!(d.env_keys(), vec!["A"]);
    }
}
