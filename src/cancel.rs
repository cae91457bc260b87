//! `cancel`: the decision (only the job's author may cancel it; a
//! finished job only with `force`), and the two requests that go out
//! together: a NIP-09 deletion (kind 5) and the Loom cancel (kind 5102,
//! `e` job, `p` worker) that swarmstr's workers listen for.

use nostr_sdk::prelude::*;

use crate::deadline::Deadline;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::follow;
use crate::journal::{JobRecord, Journal};
use crate::notice::{short_id, short_npub, Notice, Notices};
use crate::protocol::{self, JobRequest};
use crate::relays::{self, RelayOutcome};
use crate::state::JobTracker;

/// What to cancel, and how.
#[derive(Debug, Clone, Copy)]
pub struct CancelRequest<'a> {
    /// The job.
    pub job: EventId,
    /// The journal's copy of it, if any (found when the relays lost it).
    pub stored: Option<&'a JobRecord>,
    /// Send even if the job already finished.
    pub force: bool,
    /// The requests' content.
    pub reason: &'a str,
}

/// The cancel that went out.
#[derive(Debug, Clone)]
pub struct Cancelled {
    /// The job.
    pub job: EventId,
    /// The NIP-09 deletion request.
    pub deletion: Event,
    /// Its outcome per relay.
    pub relays: Vec<RelayOutcome>,
    /// Relays that accepted the deletion.
    pub accepted: usize,
    /// The Loom kind 5102 cancel.
    pub loom: Event,
    /// Relays that accepted the kind 5102 cancel.
    pub loom_accepted: usize,
}

/// Look the job up (half of `deadline`, so the cancel still has time to
/// go out), decide, and send both cancel requests to `urls`. A lookup
/// that did not reach every relay is a warning in `notices`.
pub async fn send(
    keys: &Keys,
    urls: &[RelayUrl],
    c: CancelRequest<'_>,
    deadline: Deadline,
    notices: &mut Notices,
) -> Result<Cancelled> {
    let client = relays::client(keys, urls).await;
    let r = send_with(&client, keys, urls, c, deadline, notices).await;
    relays::shutdown(&client).await;
    r
}

async fn send_with(
    client: &Client,
    keys: &Keys,
    urls: &[RelayUrl],
    c: CancelRequest<'_>,
    deadline: Deadline,
    notices: &mut Notices,
) -> Result<Cancelled> {
    let (mut t, reach) = follow::load_jobs_reach(client, urls, &[c.job], deadline.share(2)).await;
    let mut tracker = t.pop().ok_or_else(|| Error::input("no job given"))?;
    if tracker.request.is_none() {
        if let Some(ev) = c.stored.map(|s| s.signed_event()).transpose()? {
            tracker.ingest(&ev);
        }
    }
    let Some(req) = tracker.request.clone() else {
        return Err(crate::request::not_found(
            c.job,
            &reach,
            urls.len(),
            deadline,
        ));
    };
    if !reach.complete() {
        notices.push(Notice::Warning(reach.describe()));
    }
    let worker = decide(&tracker, &req, keys, c)?;
    let deletion = dispatch::cancel_event(&c.job, keys, c.reason)?;
    let loom = protocol::cancel_request(&c.job, &worker, c.reason)
        .sign_with_keys(keys)
        .map_err(|e| Error::Runtime(format!("cannot sign the cancel request: {e}")))?;
    let remaining = deadline.remaining();
    let (out, loom_out) = tokio::join!(
        relays::publish_with(client, &deletion, urls, remaining),
        relays::publish_with(client, &loom, urls, remaining)
    );
    let loom_accepted = relays::accepted(&loom_out);
    tracing::info!(
        "kind 5102 cancel {} accepted by {loom_accepted}/{} relays",
        loom.id,
        loom_out.len()
    );
    Ok(Cancelled {
        job: tracker.id,
        accepted: relays::accepted(&out),
        relays: out,
        deletion,
        loom,
        loom_accepted,
    })
}

/// Whether `keys` may cancel the job now, and the worker to address the
/// Loom cancel to: from the request, else its first `p` tag (how every
/// client today reads it).
fn decide(
    tracker: &JobTracker,
    req: &Event,
    keys: &Keys,
    c: CancelRequest<'_>,
) -> Result<PublicKey> {
    let short = short_id(&c.job.to_hex());
    if req.pubkey != keys.public_key() {
        return Err(Error::input(format!(
            "job {short} was requested by {}, not by your key; only its author can cancel it",
            short_npub(&req.pubkey)
        )));
    }
    let state = tracker.state();
    if state.is_terminal() && !c.force {
        return Err(Error::input(format!(
            "job {short} is already {state}; pass --force to send the cancel anyway"
        )));
    }
    JobRequest::from_event(req)
        .map(|j| j.worker)
        .or_else(|| req.tags.public_keys().next().copied())
        .ok_or_else(|| Error::input(format!("job {short} names no worker to cancel it with")))
}

/// Note an accepted cancel in the journal (nothing when no relay took it).
pub fn record(journal: &mut Journal, c: &Cancelled) -> Result<()> {
    if c.accepted == 0 {
        return Ok(());
    }
    journal.note(
        &c.job,
        "cancel-requested",
        &format!(
            "deletion {} accepted by {}/{} relays; kind 5102 cancel {} by {}",
            c.deletion.id,
            c.accepted,
            c.relays.len(),
            c.loom.id,
            c.loom_accepted
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(author: &Keys, worker: PublicKey) -> (JobTracker, Event) {
        let req = JobRequest::bare(worker, worker, "echo");
        let ev = req.to_builder().sign_with_keys(author).unwrap();
        let mut t = JobTracker::new(ev.id);
        t.ingest(&ev);
        (t, ev)
    }

    fn request(job: EventId, force: bool) -> CancelRequest<'static> {
        CancelRequest {
            job,
            stored: None,
            force,
            reason: "r",
        }
    }

    #[test]
    fn the_author_cancels_a_pending_job_addressed_to_its_worker() {
        let me = Keys::generate();
        let worker = Keys::generate().public_key();
        let (t, ev) = tracked(&me, worker);
        assert_eq!(decide(&t, &ev, &me, request(ev.id, false)).unwrap(), worker);
    }

    #[test]
    fn only_the_author_may_cancel() {
        let (t, ev) = tracked(&Keys::generate(), Keys::generate().public_key());
        let e = decide(&t, &ev, &Keys::generate(), request(ev.id, true)).unwrap_err();
        assert!(
            e.to_string().contains("only its author can cancel it"),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
    }
}
