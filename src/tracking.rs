//! Journal sync for followed jobs: the one place where what the relays
//! told a [`JobTracker`] meets the local journal. It fills trackers whose
//! request the relays no longer have (deleted after a cancel, or never
//! published) from the journal, records observed statuses and results in
//! the journal's timeline, and turns a journaled job into a [`JobView`].
//! Built on the journal's public API only; it never prints: failures to
//! record come back as errors for the caller to warn about.

use nostr_sdk::prelude::*;

use crate::error::{Error, Result};
use crate::journal::{JobRecord, Journal};
use crate::payment::PaymentToken;
use crate::protocol::{JobResult, JobState, StatusUpdate};
use crate::state::{JobTracker, JobView, Update, STALE_AFTER_SECS};
use crate::text::{clip, one_line};

/// Give `t` the journaled request of `rec` when no relay had it. Returns
/// whether the tracker now has a request from the journal.
pub fn adopt_record(t: &mut JobTracker, rec: &JobRecord) -> bool {
    if t.request.is_some() {
        return false;
    }
    match rec.signed_event() {
        Ok(ev) => {
            t.ingest(&ev);
            t.unpublished = !rec.published;
            t.request.is_some()
        }
        Err(_) => false,
    }
}

/// Requests the relays no longer have come from the journal (a job the
/// journal cannot read stays not found).
pub fn fill_from_journal(journal: Option<&Journal>, trackers: &mut [JobTracker]) {
    let Some(j) = journal else { return };
    for t in trackers.iter_mut().filter(|t| t.request.is_none()) {
        if let Ok(Some(rec)) = j.get(&t.id) {
            adopt_record(t, &rec);
        }
    }
}

/// A worker's reason, on one line and clipped.
pub fn reason_text(r: &str) -> String {
    clip(&one_line(r), 200)
}

/// The journal timeline message of a status.
fn status_message(s: &StatusUpdate) -> String {
    match s.reason.as_deref().filter(|_| s.state != JobState::Success) {
        Some(r) if s.message.trim().is_empty() => format!("reason: {}", reason_text(r)),
        Some(r) => format!("{} (reason: {})", s.message, reason_text(r)),
        None => s.message.clone(),
    }
}

/// The journal timeline message of a result.
fn result_message(r: &JobResult) -> String {
    format!(
        "result: exit {}{}",
        r.exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "?".into()),
        r.error
            .as_deref()
            .filter(|_| !r.success)
            .map(|e| format!(": {}", reason_text(e)))
            .unwrap_or_default()
    )
}

/// Record one observed update of a journaled job in its timeline (a job
/// the journal does not know is left alone). Returns whether it added.
pub fn record_update(journal: &mut Journal, t: &JobTracker, u: &Update) -> Result<bool> {
    match u {
        Update::Status(s) => journal.record_state(
            &t.id,
            s.state,
            &status_message(s),
            s.at.as_secs(),
            None,
            None,
            None,
        ),
        Update::Result(r) => {
            let change = r
                .change
                .as_deref()
                .map(|c| (c, PaymentToken::parse(c).ok().map(|p| p.info().amount)));
            journal.record_state(
                &t.id,
                r.state(),
                &result_message(r),
                r.at.as_secs(),
                r.exit_code,
                r.duration,
                change,
            )
        }
    }
}

/// Record everything known about the trackers' jobs, oldest first; the
/// errors of the updates that could not be recorded come back.
pub fn record_known(journal: Option<&mut Journal>, trackers: &[JobTracker]) -> Vec<Error> {
    let Some(j) = journal else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for t in trackers.iter().filter(|t| t.request.is_some()) {
        for u in t.known_updates() {
            if let Err(e) = record_update(j, t, &u) {
                errors.push(e);
            }
        }
    }
    errors
}

/// Both directions at once: fill the trackers from the journal, then
/// record what they know in it. Returns the recording errors.
pub fn sync(journal: Option<&mut Journal>, trackers: &mut [JobTracker]) -> Vec<Error> {
    fill_from_journal(journal.as_deref(), trackers);
    record_known(journal, trackers)
}

/// A journaled job as a view (for `list --local` and the journal-only
/// rows of `list`).
pub fn view_of_record(r: &JobRecord, now: Timestamp) -> JobView {
    let state = r.state;
    JobView {
        found: true,
        author: Some(r.author.clone()),
        created_at: Some(r.created_at),
        worker: Some(r.worker.clone()),
        cmd: Some(r.cmd.clone()),
        args: r.args.clone(),
        stale: state == JobState::Pending
            && now.as_secs().saturating_sub(r.created_at) > STALE_AFTER_SECS,
        updated_at: Some(r.updated_at),
        exit_code: r.exit_code,
        duration: r.duration,
        change: r
            .change_token
            .as_deref()
            .and_then(|c| PaymentToken::parse(c).ok())
            .map(|c| c.info().clone()),
        change_sent: r.change_token.is_some(),
        amount: r.amount,
        unit: r.unit.clone(),
        mint: r.mint.clone(),
        ..JobView::blank(r.id.clone(), state)
    }
}

/// The ids (hex) of the trackers whose request was found nowhere.
pub fn not_found(trackers: &[JobTracker]) -> Vec<String> {
    trackers
        .iter()
        .filter(|t| t.request.is_none())
        .map(|t| t.id.to_hex())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::journal::NewJob;
    use crate::protocol::{JobRequest, KIND_JOB_RESULT, KIND_JOB_STATUS};
    use crate::state::tests::{act_request, bare};

    fn tag(name: &'static str, v: &str) -> Tag {
        Tag::custom(TagKind::Custom(name.into()), [v.to_string()])
    }

    fn request(user: &Keys, worker: &Keys) -> Event {
        let args = vec!["-j".into()];
        act_request(user, worker, JobRequest { args, ..bare() })
    }

    /// A journal at `dir` holding the dispatch of `ev` (for tests).
    pub(crate) fn journal_with(dir: &std::path::Path, ev: &Event, worker: &Keys) -> Journal {
        let mut j = Journal::open(&dir.join("j.sqlite")).expect("open");
        j.record_dispatch(&NewJob {
            event: ev,
            worker: worker.public_key(),
            cmd: "act",
            args: &["-j".to_string()],
            token: None,
            payment: None,
            relays: &[],
            idempotency_key: None,
            content_hash: "h",
            rerun_of: None,
        })
        .expect("record");
        j
    }

    #[test]
    fn a_request_only_the_journal_has_fills_the_tracker_as_unpublished() {
        let (user, worker) = (Keys::generate(), Keys::generate());
        let ev = request(&user, &worker);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = journal_with(dir.path(), &ev, &worker);
        let mut ts = vec![
            JobTracker::new(ev.id),
            JobTracker::new(EventId::all_zeros()),
        ];
        let errors = sync(Some(&mut j), &mut ts);
        assert!(errors.is_empty());
        assert!(ts[0].request.is_some());
        assert_eq!(ts[0].state(), JobState::Unpublished);
        assert_eq!(not_found(&ts), vec![EventId::all_zeros().to_hex()]);
    }

    #[test]
    fn observed_updates_are_recorded_once_with_their_reason() {
        let (user, worker) = (Keys::generate(), Keys::generate());
        let ev = request(&user, &worker);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = journal_with(dir.path(), &ev, &worker);
        let mut t = JobTracker::new(ev.id);
        t.ingest(&ev);
        let status = EventBuilder::new(Kind::Custom(KIND_JOB_STATUS), "")
            .tags([tag("d", &ev.id.to_hex()), tag("status", "timeout")])
            .custom_created_at(Timestamp::from(ev.created_at.as_secs() + 1))
            .sign_with_keys(&worker)
            .expect("sign");
        let result = EventBuilder::new(Kind::Custom(KIND_JOB_RESULT), "")
            .tags([Tag::event(ev.id), tag("exit_code", "3")])
            .custom_created_at(Timestamp::from(ev.created_at.as_secs() + 2))
            .sign_with_keys(&worker)
            .expect("sign");
        t.ingest(&status);
        t.ingest(&result);
        assert!(record_known(Some(&mut j), std::slice::from_ref(&t)).is_empty());
        // A replay adds nothing.
        assert!(record_known(Some(&mut j), std::slice::from_ref(&t)).is_empty());
        let worker_rows: Vec<_> = j
            .timeline(&ev.id)
            .expect("timeline")
            .into_iter()
            .filter(|e| e.source == "worker")
            .collect();
        assert_eq!(worker_rows.len(), 2, "{worker_rows:?}");
        assert_eq!(worker_rows[0].message, "reason: timed out");
        assert_eq!(worker_rows[1].message, "result: exit 3");
        let rec = j.get(&ev.id).expect("get").expect("row");
        let v = view_of_record(&rec, Timestamp::from(rec.created_at + STALE_AFTER_SECS + 1));
        assert_eq!(
            (v.state, v.exit_code, v.stale),
            (JobState::Failed, Some(3), false)
        );
    }
}
