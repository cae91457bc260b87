//! The state of a job as jobctl tracks it: every status word a worker may
//! send, normalised (see [`JobState::parse`]), plus the journal-local
//! `unpublished` (journaled, no relay accepted it yet), which never comes
//! over the wire. Its text ([`JobState::as_str`]) is what the journal's
//! `jobs.state` and `timeline.state` columns store.

use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A job's state, normalised from the many spellings workers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// In the journal, but no relay has accepted it yet (local only).
    Unpublished,
    /// Published; no worker has said anything yet.
    Pending,
    /// The worker accepted it and queued it.
    Queued,
    /// The worker is running it.
    Running,
    /// Finished with success (terminal).
    Success,
    /// Finished with failure (terminal).
    Failed,
    /// Cancelled (terminal).
    Cancelled,
    /// The worker skipped it and will not run it (terminal; Budabit's word).
    Skipped,
    /// The worker reported an error (terminal: no result will follow).
    Error,
    /// A status value jobctl does not know.
    Unknown,
}

impl JobState {
    /// Normalise a worker's `status` tag value. Unknown values are
    /// [`JobState::Unknown`], never an error.
    pub fn parse(s: &str) -> JobState {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => JobState::Pending,
            // `checking`: journaled while its pre-flight checks run.
            "unpublished" | "checking" => JobState::Unpublished,
            "queued" | "waiting" => JobState::Queued,
            "running" | "in_progress" | "in-progress" | "started" | "processing" => {
                JobState::Running
            }
            "success" | "succeeded" | "completed" | "done" => JobState::Success,
            // swarmstr's `timeout`: the run hit its time limit, a failure.
            "failed" | "failure" | "timeout" | "timed_out" | "timed-out" => JobState::Failed,
            "cancelled" | "canceled" => JobState::Cancelled,
            "skipped" => JobState::Skipped,
            "error" => JobState::Error,
            _ => JobState::Unknown,
        }
    }

    /// Success, failed, cancelled, skipped (and error: the worker gave up).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Success
                | JobState::Failed
                | JobState::Cancelled
                | JobState::Skipped
                | JobState::Error
        )
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Unpublished => "unpublished",
            JobState::Pending => "pending",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Success => "success",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Skipped => "skipped",
            JobState::Error => "error",
            JobState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    /// Exactly one of the [`JobState::as_str`] names (the journal's text).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a job state"))
    }
}

impl JobState {
    /// Every state, in order.
    pub const ALL: [JobState; 10] = [
        JobState::Unpublished,
        JobState::Pending,
        JobState::Queued,
        JobState::Running,
        JobState::Success,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Skipped,
        JobState::Error,
        JobState::Unknown,
    ];
}

impl ToSql for JobState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JobState {
    /// Read leniently, as jobctl always did: a word it does not know is
    /// [`JobState::Unknown`], never an unreadable journal.
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str().map(JobState::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_normalise_and_never_fail() {
        assert_eq!(JobState::parse("in_progress"), JobState::Running);
        assert_eq!(JobState::parse("FAILURE"), JobState::Failed);
        assert_eq!(JobState::parse("canceled"), JobState::Cancelled);
        assert_eq!(JobState::parse("exploded"), JobState::Unknown);
        assert_eq!(JobState::parse(""), JobState::Unknown);
        assert!(JobState::Success.is_terminal() && !JobState::Running.is_terminal());
    }

    #[test]
    fn todays_status_words() {
        let cases = [
            ("completed", JobState::Success),
            ("timeout", JobState::Failed),
            ("failure", JobState::Failed),
            ("in_progress", JobState::Running),
            ("pending", JobState::Pending),
            ("skipped", JobState::Skipped),
            ("error", JobState::Error),
            ("queued", JobState::Queued),
        ];
        for (word, state) in cases {
            assert_eq!(JobState::parse(word), state, "{word}");
        }
        assert!(JobState::Skipped.is_terminal());
        assert!(!JobState::Pending.is_terminal());
    }

    #[test]
    fn text_round_trips_for_the_journal() {
        for st in JobState::ALL {
            assert_eq!(st.as_str().parse::<JobState>(), Ok(st));
            assert_eq!(JobState::parse(st.as_str()), st);
            assert_eq!(st.to_string(), st.as_str());
        }
        assert!("Running".parse::<JobState>().is_err());
        assert!("in_progress".parse::<JobState>().is_err());
    }
}
