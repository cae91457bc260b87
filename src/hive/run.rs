//! Hive CI's own events, exactly as `loom-protocol.md` ("Hive CI:
//! workflow runs") fixes them: the kind 5401 workflow run, the kind 5402
//! workflow result, and the rule that resolves a run's state (a trusted
//! 5402 beats the job's 5101, which beats its newest 30100). Pure: no IO.

use nostr_sdk::prelude::*;
use serde::Serialize;

use super::repo::{RepoRef, KIND_REPO_ANNOUNCEMENT};
use crate::protocol::{JobState, KIND_WORKFLOW_RUN};
use crate::state::JobTracker;

/// Kind 5402: workflow result, signed by the run's throwaway key.
pub const KIND_WORKFLOW_RESULT: u16 = 5402;
/// The `t` tag every run carries.
pub const HIVE_CI_TAG: &str = "hive-ci";
/// The `trigger` of a run started by hand (Budabit's only one).
pub const TRIGGER_MANUAL: &str = "manual";

/// Why an event is not a well-formed run or result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Another kind.
    #[error("kind {0} is not kind {1}")]
    WrongKind(u16, u16),
    /// A required tag is missing or empty.
    #[error("the `{0}` tag is missing or empty")]
    Missing(&'static str),
    /// A tag whose value cannot be read.
    #[error("the `{0}` tag holds `{1}`, which is not valid")]
    Invalid(&'static str, String),
}

fn custom(name: &str, value: impl Into<String>) -> Tag {
    Tag::custom(TagKind::Custom(name.to_string().into()), [value.into()])
}

fn first<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event.tags.iter().find_map(|t| {
        let s = t.as_slice();
        (s.len() >= 2 && s[0] == name).then(|| s[1].as_str())
    })
}

fn check_kind(event: &Event, want: u16) -> Result<(), EventError> {
    let k = event.kind.as_u16();
    if k != want {
        return Err(EventError::WrongKind(k, want));
    }
    Ok(())
}

/// A kind 5401 workflow run, before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowRun {
    /// The repository (`a` = `30617:<owner>:<identifier>`).
    #[serde(serialize_with = "ser_repo")]
    pub repo: RepoRef,
    /// The workflow file, e.g. `.github/workflows/ci.yml`.
    pub workflow: String,
    /// Who triggers it (the signer).
    pub triggered_by: PublicKey,
    /// The throwaway key that will sign the 5402.
    pub publisher: Option<PublicKey>,
    /// `manual`.
    pub trigger: String,
    /// The branch.
    pub branch: String,
    /// The commit.
    pub commit: String,
}

fn ser_repo<S: serde::Serializer>(r: &RepoRef, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&r.coordinate())
}

impl WorkflowRun {
    /// The tags, in the spec's order: a, workflow, triggered-by,
    /// publisher, trigger, branch, commit, t.
    pub fn tags(&self) -> Vec<Tag> {
        let mut tags = vec![
            custom("a", self.repo.coordinate()),
            custom("workflow", &self.workflow),
            custom("triggered-by", self.triggered_by.to_hex()),
        ];
        if let Some(p) = self.publisher {
            tags.push(custom("publisher", p.to_hex()));
        }
        tags.push(custom("trigger", &self.trigger));
        tags.push(custom("branch", &self.branch));
        tags.push(custom("commit", &self.commit));
        tags.push(custom("t", HIVE_CI_TAG));
        tags
    }

    /// An unsigned builder (content empty).
    pub fn to_builder(&self) -> EventBuilder {
        EventBuilder::new(Kind::Custom(KIND_WORKFLOW_RUN), "")
            .tags(self.tags())
            .allow_self_tagging()
    }

    /// Read a 5401 back. `a` and `workflow` are required; a missing
    /// `triggered-by` is the signer, a missing `trigger` is `manual`.
    pub fn from_event(event: &Event) -> Result<WorkflowRun, EventError> {
        check_kind(event, KIND_WORKFLOW_RUN)?;
        let a = first(event, "a").ok_or(EventError::Missing("a"))?;
        let repo = a
            .starts_with(&format!("{KIND_REPO_ANNOUNCEMENT}:"))
            .then(|| RepoRef::parse(a).ok())
            .flatten()
            .ok_or_else(|| EventError::Invalid("a", crate::text::clip(a, 120)))?;
        let workflow = first(event, "workflow")
            .filter(|w| !w.trim().is_empty())
            .ok_or(EventError::Missing("workflow"))?;
        let key = |name: &'static str| -> Result<Option<PublicKey>, EventError> {
            first(event, name)
                .map(|v| {
                    PublicKey::from_hex(v.trim())
                        .map_err(|_| EventError::Invalid(name, crate::text::clip(v, 80)))
                })
                .transpose()
        };
        let text = |name| first(event, name).unwrap_or("").to_string();
        Ok(WorkflowRun {
            repo,
            workflow: workflow.to_string(),
            triggered_by: key("triggered-by")?.unwrap_or(event.pubkey),
            publisher: key("publisher")?,
            trigger: first(event, "trigger")
                .filter(|t| !t.is_empty())
                .unwrap_or(TRIGGER_MANUAL)
                .to_string(),
            branch: text("branch"),
            commit: text("commit"),
        })
    }
}

/// A signed run as read from a relay.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    /// The run id (the 5401's event id).
    pub id: EventId,
    /// Who signed it.
    pub author: PublicKey,
    /// When.
    pub at: Timestamp,
    /// What it says.
    pub run: WorkflowRun,
}

impl RunEvent {
    /// Read a signed 5401.
    pub fn from_event(event: &Event) -> Result<RunEvent, EventError> {
        Ok(RunEvent {
            id: event.id,
            author: event.pubkey,
            at: event.created_at,
            run: WorkflowRun::from_event(event)?,
        })
    }

    /// Whether `key` may sign this run's 5402: its publisher; a run that
    /// names none, its own signer.
    pub fn may_report(&self, key: &PublicKey) -> bool {
        self.run.publisher.unwrap_or(self.author) == *key
    }
}

/// A kind 5402 workflow result, before signing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowResult {
    /// The run (`e`).
    pub run: EventId,
    /// `success`, `failure`, ... as the runner says.
    pub status: String,
    /// The workflow's exit code.
    pub exit_code: Option<i64>,
    /// Run time in seconds.
    pub duration: Option<f64>,
    /// The log on Blossom.
    pub log_url: Option<String>,
}

/// The status word for an exit code: `success` for 0, else `failure`.
pub fn status_for_exit(code: i64) -> &'static str {
    if code == 0 {
        "success"
    } else {
        "failure"
    }
}

/// Seconds as the `duration` tag writes them: whole seconds when whole.
fn seconds_text(d: f64) -> String {
    if d.fract() == 0.0 && d < 1e15 {
        format!("{}", d as u64)
    } else {
        format!("{d:.3}")
    }
}

/// `12`, `12.5` or `12.5s`; never negative, NaN or infinite.
fn parse_seconds(v: &str) -> Option<f64> {
    let t = v.trim();
    let t = t.strip_suffix('s').unwrap_or(t).trim();
    t.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0)
}

impl WorkflowResult {
    /// The tags, in the spec's order: e, status, exit_code, duration, log_url.
    pub fn tags(&self) -> Vec<Tag> {
        let mut tags = vec![Tag::event(self.run), custom("status", &self.status)];
        if let Some(c) = self.exit_code {
            tags.push(custom("exit_code", c.to_string()));
        }
        if let Some(d) = self.duration {
            tags.push(custom("duration", seconds_text(d)));
        }
        if let Some(u) = &self.log_url {
            tags.push(custom("log_url", u));
        }
        tags
    }

    /// An unsigned builder (content empty).
    pub fn to_builder(&self) -> EventBuilder {
        EventBuilder::new(Kind::Custom(KIND_WORKFLOW_RESULT), "").tags(self.tags())
    }

    /// Read a 5402 back; `e` is required, the rest lenient.
    pub fn from_event(event: &Event) -> Result<WorkflowResult, EventError> {
        check_kind(event, KIND_WORKFLOW_RESULT)?;
        let e = first(event, "e").ok_or(EventError::Missing("e"))?;
        let run = EventId::from_hex(e.trim())
            .map_err(|_| EventError::Invalid("e", crate::text::clip(e, 80)))?;
        let exit_code = first(event, "exit_code").and_then(|v| v.trim().parse().ok());
        Ok(WorkflowResult {
            run,
            status: first(event, "status").unwrap_or("").trim().to_string(),
            exit_code,
            duration: first(event, "duration").and_then(parse_seconds),
            log_url: first(event, "log_url")
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string),
        })
    }

    /// The state it puts the run in: its status word, else its exit code.
    pub fn state(&self) -> JobState {
        match (JobState::parse(&self.status), self.exit_code) {
            (JobState::Unknown | JobState::Unpublished | JobState::Pending, Some(c)) => {
                if c == 0 {
                    JobState::Success
                } else {
                    JobState::Failed
                }
            }
            (JobState::Unpublished, None) => JobState::Unknown,
            (s, _) => s,
        }
    }
}

/// A signed 5402 as read from a relay.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultEvent {
    /// The 5402's own id.
    pub id: EventId,
    /// Who signed it.
    pub author: PublicKey,
    /// When.
    pub at: Timestamp,
    /// What it says.
    pub result: WorkflowResult,
}

impl ResultEvent {
    /// Read a signed 5402.
    pub fn from_event(event: &Event) -> Result<ResultEvent, EventError> {
        Ok(ResultEvent {
            id: event.id,
            author: event.pubkey,
            at: event.created_at,
            result: WorkflowResult::from_event(event)?,
        })
    }
}

/// The newest 5402 for `run` signed by a key that may report it; others
/// (forgeries, results of other runs) are ignored.
pub fn trusted_result<'a>(run: &RunEvent, results: &'a [ResultEvent]) -> Option<&'a ResultEvent> {
    results
        .iter()
        .filter(|r| r.result.run == run.id && run.may_report(&r.author))
        .max_by_key(|r| (r.at, r.id))
}

/// Which event decided a run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateSource {
    /// The workflow result (5402).
    WorkflowResult,
    /// The job's result (5101).
    JobResult,
    /// The job's newest status (30100).
    JobStatus,
    /// Nothing yet.
    None,
}

/// A run's state: the 5402 wins, then the job's 5101, then its newest
/// 30100, else pending.
pub fn run_state(
    result: Option<&WorkflowResult>,
    job: Option<&JobTracker>,
) -> (JobState, StateSource) {
    if let Some(r) = result {
        return (r.state(), StateSource::WorkflowResult);
    }
    if let Some(t) = job {
        if let Some(r) = t.result() {
            return (r.state(), StateSource::JobResult);
        }
        if let Some(s) = t.latest_status() {
            return (s.state, StateSource::JobStatus);
        }
    }
    (JobState::Pending, StateSource::None)
}
