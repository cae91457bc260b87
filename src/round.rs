//! One dispatch of a new, signed job in one round: the relay pool starts
//! connecting, the journal commits the job (on a blocking thread), and
//! the pre-flight checks (the caller's gate: the token's spent-check at
//! its mint, a deciding advertisement lookup) and the worker's relay-list
//! lookup run, all at once, with the caller's advisory lookups beside
//! them. The job is sent only once it is durably journaled and the gate
//! passed; while it is on its way the journal folds its log into its
//! file. While a gate that can refuse runs, the job is journaled
//! `checking` (never republished; unflushed, the flush that marks it
//! sendable carries it to the disk); a job the gate refuses is taken out
//! of the journal again, so nothing is published and nothing is lost. The
//! lookups and the publish share the caller's pool: one connection round.

use std::future::Future;

use nostr_sdk::prelude::*;

use crate::deadline::Deadline;
use crate::dispatch::{self, DispatchReport, JobSpec};
use crate::error::{Error, Result};
use crate::files::FileLock;
use crate::journal::Journal;
use crate::notice::Notices;
use crate::outbox::{self, Route};
use crate::relays;

/// Where and how a job goes. `client` is a [`relays::one_job`] pool.
#[derive(Clone, Copy)]
pub struct Round<'a> {
    /// The dispatch's one relay pool.
    pub client: &'a Client,
    /// The configured relays.
    pub relays: &'a [RelayUrl],
    /// The command's one deadline.
    pub deadline: Deadline,
    /// Relays that must accept.
    pub min_accept: usize,
    /// Also send to the worker's inbox relays (NIP-65).
    pub outbox: bool,
}

/// A signed job about to be journaled and published.
pub struct NewJob {
    /// What it is.
    pub spec: JobSpec,
    /// The signed request.
    pub event: Event,
    /// The key that signed it.
    pub keys: Keys,
    /// `--idempotency-key`.
    pub idempotency_key: Option<String>,
    /// The job it re-runs.
    pub rerun_of: Option<EventId>,
    /// The wallet's lock when the wallet made the token: released once
    /// the job carrying the token is journaled.
    pub wallet_lock: Option<FileLock>,
}

/// A job sent, and what the caller's advice found meanwhile.
pub struct Sent {
    /// Each relay's verdict.
    pub report: DispatchReport,
    /// Warnings found beside the commit and the publish.
    pub advice: Notices,
}

/// The pre-flight checks of one job: `checks` run beside the commit;
/// `may_refuse` says whether they can refuse it (then the job is
/// journaled `checking` until they pass).
pub struct Gate<G> {
    /// The checks.
    pub checks: G,
    /// Whether they may refuse the job.
    pub may_refuse: bool,
}

/// Journal `job` and publish it through `r.client`, with `gate` (checks
/// that may refuse the job) run beside the commit, `advice` (lookups that
/// only warn) beside both from the moment the sockets open, and
/// `before_send` told the route once the job is about to go (for a
/// progress line). `journal` may still be opening (on a blocking
/// thread): the configured relays start connecting first.
pub async fn dispatch<G, A>(
    r: Round<'_>,
    journal: impl Future<Output = Result<Journal>>,
    job: NewJob,
    gate: Gate<G>,
    advice: A,
    before_send: impl FnOnce(&Route),
) -> Result<Sent>
where
    G: Future<Output = Result<()>>,
    A: Future<Output = Notices>,
{
    connect(r.client, r.relays).await;
    let sent = send(r, journal, job, gate, before_send);
    let (report, advice) = beside(sent, advice).await?;
    Ok(Sent { report, advice })
}

/// What a commit leaves: the journal, whether the job was added, and
/// where it goes (the route, and the relays it was journaled for).
type Committed = (Journal, bool, Route, Vec<RelayUrl>);

/// The rest of [`dispatch`] once the configured relays are connecting:
/// the gate beside the journal's open, the commit and the route lookup;
/// then the publish.
async fn send<G>(
    r: Round<'_>,
    journal: impl Future<Output = Result<Journal>>,
    job: NewJob,
    gate: Gate<G>,
    before_send: impl FnOnce(&Route),
) -> Result<DispatchReport>
where
    G: Future<Output = Result<()>>,
{
    let worker = job.spec.worker;
    let (id, event) = (job.event.id, job.event.clone());
    let payment = job.spec.token.as_ref().map(|t| t.info().clone());
    let committed = async {
        let journal = journal.await?;
        // The worker's inbox relays as last remembered join at once.
        let cached = outbox::known_route(r.outbox, Some(&journal), &worker, r.relays);
        let cached_inbox = cached.as_ref().map_or(&[][..], |c| &c.inbox[..]);
        connect(r.client, cached_inbox).await;
        let first = outbox::targets(r.relays, cached.as_ref().unwrap_or(&Route::default()));
        let commit = commit(journal, job, first.clone(), gate.may_refuse);
        let route = async {
            match cached {
                Some(route) => route,
                None => outbox::lookup_within(r.client, r.relays, worker, r.deadline).await,
            }
        };
        let (committed, route) = tokio::join!(commit, route);
        committed.map(|(journal, added)| (journal, added, route, first))
    };
    let (committed, gated): (Result<Committed>, _) = tokio::join!(committed, gate.checks);
    let (mut journal, added, route, first) = match (committed, gated) {
        (Ok(c), Ok(())) => c,
        (Ok((mut journal, ..)), Err(refused)) => {
            // Only a `checking` row goes (this one, or the same event left
            // by a run cut off in the same second): never one that was sent.
            if let Err(w) = journal.withdraw(&id) {
                tracing::warn!(job = %id, "cannot take the refused job out of the journal: {w}");
            }
            return Err(refused);
        }
        // A refusal is the answer to give (bad input), also when the
        // journal failed: nothing was sent either way.
        (Err(_), Err(refused)) => return Err(refused),
        (Err(e), Ok(())) => return Err(e),
    };
    if gate.may_refuse || !added {
        // Sendable from here on (this job, or the same event journaled
        // `checking` by a run cut off in the same second): durable before
        // the first relay sees it.
        journal.checks_passed(&id)?;
    }
    // The job (and its token) is on disk; what follows is bookkeeping.
    journal.bookkeeping_only();
    let targets = outbox::targets(r.relays, &route);
    let late: Vec<RelayUrl> = targets
        .iter()
        .filter(|u| !first.contains(u))
        .cloned()
        .collect();
    if !late.is_empty() {
        // Only `republish`'s knowledge of where the job goes: a failure
        // to write it does not hold the job up.
        if let Err(e) = journal.add_job_relays(&id, &late) {
            tracing::warn!(job = %id, "cannot journal the worker's inbox relays: {e}");
        }
        relays::add_one_job_relays(r.client, &late).await;
    }
    before_send(&route);
    let todo = dispatch::Unaccepted::of(&journal, &id, &targets)?;
    // While the event is on its way, the journal folds its log into the
    // database file (the checkpoint a close would otherwise do after the
    // answers are in).
    let (fresh, folded) = tokio::join!(
        todo.publish(r.client, &event, r.deadline.remaining()),
        fold(journal)
    );
    let mut journal = folded?;
    let report = todo.finish(&mut journal, event, payment, fresh, r.min_accept);
    outbox::remember(&journal, &worker, &route);
    let mut report = report?;
    report.worker_inbox = route.inbox.iter().map(|u| u.to_string()).collect();
    drop(journal);
    Ok(report)
}

/// Run `main` with `side` beside it; `side`'s answer is waited for only
/// once `main` succeeded (a failed dispatch returns at once).
async fn beside<T, S: Future>(
    main: impl Future<Output = Result<T>>,
    side: S,
) -> Result<(T, S::Output)> {
    use futures::FutureExt;
    let (main, side) = (main.fuse(), side.fuse());
    futures::pin_mut!(main, side);
    let mut early = None;
    loop {
        futures::select_biased! {
            done = main => {
                let t = done?;
                let s = match early {
                    Some(s) => s,
                    None => side.await,
                };
                return Ok((t, s));
            }
            s = side => early = Some(s),
        }
    }
}

/// Start connecting to `urls` without waiting: lookups and the publish
/// find the sockets open (or opening) when they come to them.
async fn connect(client: &Client, urls: &[RelayUrl]) {
    relays::add_one_job_relays(client, urls).await;
    for url in urls {
        if let Ok(relay) = client.relay(url).await {
            relay.connect();
        }
    }
}

/// Fold the journal's log into its file on a blocking thread; the journal
/// comes back set to close without folding again.
async fn fold(journal: Journal) -> Result<Journal> {
    tokio::task::spawn_blocking(move || {
        journal.fold();
        journal
    })
    .await
    .map_err(|e| Error::Journal(format!("the journal checkpoint did not finish: {e}")))
}

/// Journal the job on a blocking thread (its fsyncs do not hold up the
/// sockets); the journal comes back, with whether the job was added (an
/// identical one may be journaled already).
async fn commit(
    mut journal: Journal,
    job: NewJob,
    targets: Vec<RelayUrl>,
    checking: bool,
) -> Result<(Journal, bool)> {
    let work = move || {
        let to = dispatch::Journaling {
            urls: &targets,
            idempotency_key: job.idempotency_key.as_deref(),
            rerun_of: job.rerun_of,
            checking,
        };
        let added = dispatch::journal_as(&mut journal, &job.keys, &job.spec, &job.event, &to);
        // The token is in the journal (or nothing was journaled): the
        // wallet is free again.
        drop(job.wallet_lock);
        Ok((journal, added?))
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Journal(format!("the journal commit did not finish: {e}")))?
}
