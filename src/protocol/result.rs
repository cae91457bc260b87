//! Kind 5101, the job result a worker publishes: success, exit code,
//! duration, log locations (URLs or inline text), change, and the reason
//! for a failure. Built by the worker ([`ResultReport`]), read by every
//! follower ([`JobResult`]).

use nostr_sdk::prelude::*;

use super::{custom, first_value, KIND_JOB_RESULT};
use crate::job_state::JobState;

/// What a worker reports about a finished (or refused, or cancelled) job.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ResultReport {
    /// The command's exit code (`success` is `exit_code == 0`).
    pub exit_code: i64,
    /// Run time in seconds (sent with three decimals).
    pub duration: f64,
    /// Where stdout is (a URL).
    pub stdout: Option<String>,
    /// Where stderr is (a URL).
    pub stderr: Option<String>,
    /// Change handed back.
    pub change: Option<String>,
    /// Why no (or less) change came back: the result's content.
    pub note: Option<String>,
    /// The worker's reason for refusing or failing the job (`error` tag).
    pub error: Option<String>,
}

impl ResultReport {
    /// The kind 5101 result of `job` (requested by `client`). Tags: e, p,
    /// success, exit_code, duration, then stdout, stderr, change, error
    /// when set; the note is the content.
    pub fn to_builder(&self, job: &EventId, client: &PublicKey) -> EventBuilder {
        let success = if self.exit_code == 0 { "true" } else { "false" };
        let mut tags = vec![
            Tag::event(*job),
            Tag::public_key(*client),
            custom("success", vec![success.to_string()]),
            custom("exit_code", vec![self.exit_code.to_string()]),
            custom("duration", vec![format!("{:.3}", self.duration)]),
        ];
        let optional = [
            ("stdout", &self.stdout),
            ("stderr", &self.stderr),
            ("change", &self.change),
            ("error", &self.error),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                tags.push(custom(name, vec![v.clone()]));
            }
        }
        EventBuilder::new(
            Kind::Custom(KIND_JOB_RESULT),
            self.note.clone().unwrap_or_default(),
        )
        .tags(tags)
    }
}

/// A kind 5101 result from a worker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobResult {
    /// The job.
    pub job: EventId,
    /// Who signed it.
    pub author: PublicKey,
    /// `success=true` or `exit_code=0`.
    pub success: bool,
    /// The command's exit code.
    pub exit_code: Option<i64>,
    /// stdout: a URL, or (some workers) the text itself; see [`is_url`].
    pub stdout: Option<String>,
    /// stderr: a URL, or the text itself.
    pub stderr: Option<String>,
    /// The worker's reason for a failure (`error` tag), e.g.
    /// "Pubkey not whitelisted for this worker".
    pub error: Option<String>,
    /// Change token handed back (never print it unredacted).
    #[serde(skip)]
    pub change: Option<String>,
    /// Run time in seconds.
    pub duration: Option<f64>,
    /// When.
    pub at: Timestamp,
    /// The result event's own id.
    pub event_id: EventId,
}

impl JobResult {
    /// Read a result event; `None` if it is not a well-formed one.
    pub fn from_event(event: &Event) -> Option<Self> {
        if event.kind != Kind::Custom(KIND_JOB_RESULT) {
            return None;
        }
        let job = first_value(event, "e").and_then(|v| EventId::from_hex(v).ok())?;
        let exit_code = first_value(event, "exit_code").and_then(|v| v.trim().parse().ok());
        let success_tag = first_value(event, "success").map(|v| v.trim() == "true");
        let success = success_tag == Some(true) || exit_code == Some(0);
        let url = |name| {
            first_value(event, name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Some(JobResult {
            job,
            author: event.pubkey,
            success,
            exit_code,
            stdout: url("stdout"),
            stderr: url("stderr"),
            error: first_value(event, "error")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            change: url("change"),
            duration: first_value(event, "duration").and_then(parse_seconds),
            at: event.created_at,
            event_id: event.id,
        })
    }

    /// The state this result puts the job in.
    pub fn state(&self) -> JobState {
        if self.success {
            JobState::Success
        } else {
            JobState::Failed
        }
    }
}

/// A `duration` in seconds: `12`, `12.5` or `12.5s`; never negative,
/// NaN or infinite.
fn parse_seconds(v: &str) -> Option<f64> {
    let t = v.trim();
    let t = t.strip_suffix('s').unwrap_or(t).trim();
    t.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0)
}

/// Whether a result's `stdout`/`stderr` value is a URL to fetch (else it
/// is the output itself, inline).
pub fn is_url(v: &str) -> bool {
    let t = v.trim().to_ascii_lowercase();
    (t.starts_with("http://") || t.starts_with("https://")) && !t.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_util::{pk, sign};

    #[test]
    fn result_success_from_flag_or_exit_code() {
        let keys = Keys::generate();
        let job = EventId::all_zeros();
        let mk = |tags: Vec<Tag>| {
            EventBuilder::new(Kind::Custom(KIND_JOB_RESULT), "")
                .tags(tags)
                .sign_with_keys(&keys)
                .expect("sign")
        };
        let e = mk(vec![Tag::event(job), custom("exit_code", vec!["0".into()])]);
        assert!(JobResult::from_event(&e).expect("result").success);
        let e = mk(vec![
            Tag::event(job),
            custom("success", vec!["false".into()]),
            custom("exit_code", vec!["3".into()]),
            custom("stdout", vec!["http://x/abc".into()]),
        ]);
        let r = JobResult::from_event(&e).expect("result");
        assert!(!r.success);
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.stdout.as_deref(), Some("http://x/abc"));
        assert!(JobResult::from_event(&mk(vec![])).is_none());
    }

    #[test]
    fn result_reads_error_and_inline_output() {
        let keys = Keys::generate();
        let e = EventBuilder::new(Kind::Custom(KIND_JOB_RESULT), "")
            .tags(vec![
                Tag::event(EventId::all_zeros()),
                custom("success", vec!["false".into()]),
                custom(
                    "error",
                    vec!["Pubkey not whitelisted for this worker".into()],
                ),
                custom("stdout", vec!["plain text".into()]),
                custom("duration", vec!["2.5".into()]),
            ])
            .sign_with_keys(&keys)
            .expect("sign");
        let r = JobResult::from_event(&e).expect("result");
        assert!(!r.success);
        assert_eq!(
            r.error.as_deref(),
            Some("Pubkey not whitelisted for this worker")
        );
        assert_eq!(r.duration, Some(2.5));
        assert_eq!(parse_seconds(" 7s "), Some(7.0));
        assert_eq!(parse_seconds("NaN"), None);
        assert_eq!(parse_seconds("-1"), None);
        assert!(!is_url(r.stdout.as_deref().expect("stdout")));
        assert!(is_url("https://blossom.example/abc"));
        assert!(!is_url("http://x y"));
    }

    #[test]
    fn report_round_trips() {
        let job = EventId::all_zeros();
        let full = ResultReport {
            exit_code: 3,
            duration: 1.23456,
            stdout: Some("http://b/1".into()),
            stderr: Some("http://b/2".into()),
            change: Some("cashuAchange".into()),
            note: Some("no change for 2 sat".into()),
            error: Some("boom".into()),
        };
        let e = sign(full.to_builder(&job, &pk(2)));
        let r = JobResult::from_event(&e).expect("result");
        assert_eq!((r.job, r.success, r.exit_code), (job, false, Some(3)));
        assert_eq!(r.duration, Some(1.235));
        assert_eq!(r.stdout.as_deref(), Some("http://b/1"));
        assert_eq!(r.stderr.as_deref(), Some("http://b/2"));
        assert_eq!(r.change.as_deref(), Some("cashuAchange"));
        assert_eq!(r.error.as_deref(), Some("boom"));
        assert_eq!(e.content, "no change for 2 sat");
        let e = sign(ResultReport::default().to_builder(&job, &pk(2)));
        let r = JobResult::from_event(&e).expect("result");
        assert!(r.success && r.stdout.is_none() && r.change.is_none());
        assert_eq!(r.state(), JobState::Success);
        let names: Vec<String> = e.tags.iter().map(|t| t.as_slice()[0].clone()).collect();
        assert_eq!(names, ["e", "p", "success", "exit_code", "duration"]);
    }
}
