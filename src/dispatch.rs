//! Dispatching a job: the one-way flow parse -> build -> sign -> publish ->
//! report. Input is a [`JobSpec`] whose every field is already validated;
//! the result is a [`DispatchReport`] the CLI renders. Secrets are
//! NIP-44 (v2) encrypted to the worker here, at build time.

use std::time::Duration;

use nostr_sdk::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::journal::{Journal, NewJob};
use crate::payment::{PaymentToken, TokenInfo};
use crate::protocol::{JobRequest, PTag};
use crate::relays::{self, RelayOutcome};

/// Everything needed to build a job request, validated.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The worker.
    pub worker: PublicKey,
    /// Who the `p` tag names.
    pub p_tag: PTag,
    /// Command.
    pub cmd: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Payment, or `None` for an unpaid job.
    pub token: Option<PaymentToken>,
    /// Parent event (`--run`).
    pub parent: Option<EventId>,
    /// Plain environment.
    pub env: Vec<(String, String)>,
    /// Secret environment, plaintext here; encrypted by [`build`].
    pub secrets: Vec<(String, String)>,
    /// The job's input (`--stdin`), sent as the request's content.
    pub content: String,
}

impl JobSpec {
    /// A hash of what the job *is* (worker, addressee, command, arguments,
    /// environment, secrets, parent), leaving out how it is paid: two calls
    /// with one idempotency key must agree on this, whatever their tokens.
    /// Keyed with the user's secret key, so the journal's copy reveals
    /// nothing about secret values to someone without the key.
    pub fn content_hash(&self, keys: &Keys) -> String {
        let me = keys.public_key();
        let mut canonical = serde_json::json!({
            "key": keys.secret_key().to_secret_hex(),
            "worker": self.worker.to_hex(),
            "p": self.p_tag.resolve(&self.worker, &me).to_hex(),
            "cmd": self.cmd,
            "args": self.args,
            "env": self.env,
            "secrets": self.secrets,
            "parent": self.parent.map(|p| p.to_hex()),
        });
        // Only when there is input: jobs journaled before `--stdin` existed
        // keep their hash.
        if !self.content.is_empty() {
            canonical["content"] = serde_json::Value::String(self.content.clone());
        }
        crate::logs::sha256_hex(canonical.to_string().as_bytes())
    }
}

/// Build the unsigned request, encrypting secrets to the worker.
pub fn build(spec: &JobSpec, keys: &Keys) -> Result<JobRequest> {
    let mut secrets = Vec::with_capacity(spec.secrets.len());
    for (k, v) in &spec.secrets {
        let ct = nip44::encrypt(keys.secret_key(), &spec.worker, v, nip44::Version::V2)
            .map_err(|e| Error::Runtime(format!("cannot encrypt secret {k}: {e}")))?;
        secrets.push((k.clone(), ct));
    }
    Ok(JobRequest {
        worker: spec.worker,
        p: spec.p_tag.resolve(&spec.worker, &keys.public_key()),
        cmd: spec.cmd.clone(),
        args: spec.args.clone(),
        payment: spec.token.as_ref().map(|t| t.expose().to_string()),
        parent: spec.parent,
        env: spec.env.clone(),
        secrets,
        content: spec.content.clone(),
    })
}

/// Sign a request with the user's key.
pub fn sign(req: &JobRequest, keys: &Keys) -> Result<Event> {
    req.to_builder()
        .sign_with_keys(keys)
        .map_err(|e| Error::Runtime(format!("cannot sign the job request: {e}")))
}

/// What happened to one dispatch.
#[derive(Debug, Clone, Serialize)]
pub struct DispatchReport {
    /// Event id (hex): the job id.
    pub id: String,
    /// NIP-19 nevent with the relays that accepted as hints.
    pub nevent: String,
    /// The signed event.
    pub event: Event,
    /// Payment summary (never the token).
    pub payment: Option<TokenInfo>,
    /// One outcome per relay.
    pub relays: Vec<RelayOutcome>,
    /// How many accepted.
    pub accepted: usize,
    /// How many had to.
    pub min_accept: usize,
    /// Relays taken from the worker's NIP-65 relay list (its inbox) that
    /// were not configured: the job went there too (in `relays` with their
    /// outcomes). Left out of the JSON when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub worker_inbox: Vec<String>,
}

impl DispatchReport {
    /// Whether enough relays accepted.
    pub fn ok(&self) -> bool {
        self.accepted >= self.min_accept
    }
}

/// NIP-19 `nevent` for an event with relay hints.
pub fn nevent(event: &Event, hints: &[String]) -> String {
    let relays: Vec<RelayUrl> = hints
        .iter()
        .filter_map(|u| RelayUrl::parse(u).ok())
        .collect();
    Nip19Event::new(event.id)
        .author(event.pubkey)
        .kind(event.kind)
        .relays(relays)
        .to_bech32()
        .unwrap_or_default()
}

/// Assemble a report from outcomes.
pub fn report(
    event: Event,
    payment: Option<TokenInfo>,
    outcomes: Vec<RelayOutcome>,
    min_accept: usize,
) -> DispatchReport {
    let accepted = relays::accepted(&outcomes);
    let hints: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == relays::RelayStatus::Accepted)
        .map(|o| o.url.clone())
        .collect();
    DispatchReport {
        id: event.id.to_hex(),
        nevent: nevent(&event, &hints),
        event,
        payment,
        relays: outcomes,
        accepted,
        min_accept,
        worker_inbox: Vec::new(),
    }
}

/// Publish a journaled event to the relays in `urls` that have not yet
/// accepted it, record every outcome, and report. Relays that accepted in
/// an earlier attempt are reported as `accepted` ("earlier") and count
/// towards `min_accept`.
pub async fn publish_journaled(
    journal: &mut Journal,
    client: &Client,
    event: Event,
    payment: Option<TokenInfo>,
    urls: &[RelayUrl],
    timeout: Duration,
    min_accept: usize,
) -> Result<DispatchReport> {
    let todo = Unaccepted::of(journal, &event.id, urls)?;
    let fresh = todo.publish(client, &event, timeout).await;
    todo.finish(journal, event, payment, fresh, min_accept)
}

/// The relays a journaled event still has to reach (those that accepted
/// it earlier count as accepted): the steps of [`publish_journaled`], for
/// a caller that lends the journal out while the event is on its way.
pub struct Unaccepted {
    earlier: Vec<String>,
    todo: Vec<RelayUrl>,
}

impl Unaccepted {
    /// Which of `urls` have not accepted `id` yet.
    pub fn of(journal: &Journal, id: &EventId, urls: &[RelayUrl]) -> Result<Unaccepted> {
        let earlier = journal.accepted_relays(id)?;
        let todo = urls
            .iter()
            .filter(|u| !earlier.contains(&u.to_string()))
            .cloned()
            .collect();
        Ok(Unaccepted { earlier, todo })
    }

    /// Send `event` to them (nothing when none is left).
    pub async fn publish(
        &self,
        client: &Client,
        event: &Event,
        timeout: Duration,
    ) -> Vec<RelayOutcome> {
        if self.todo.is_empty() {
            return Vec::new();
        }
        relays::publish_with(client, event, &self.todo, timeout).await
    }

    /// Record the `fresh` outcomes and report.
    pub fn finish(
        self,
        journal: &mut Journal,
        event: Event,
        payment: Option<TokenInfo>,
        fresh: Vec<RelayOutcome>,
        min_accept: usize,
    ) -> Result<DispatchReport> {
        if !fresh.is_empty() {
            journal.record_outcomes(&event.id, &fresh)?;
        }
        let mut outcomes = accepted_earlier(&self.earlier);
        outcomes.extend(fresh);
        Ok(report(event, payment, outcomes, min_accept))
    }
}

/// Outcomes for the relays that accepted a job in an earlier attempt
/// (they count towards `min_accept`).
pub fn accepted_earlier(urls: &[String]) -> Vec<RelayOutcome> {
    urls.iter()
        .map(|u| RelayOutcome {
            url: u.clone(),
            status: relays::RelayStatus::Accepted,
            message: "accepted earlier".into(),
            latency_ms: 0,
        })
        .collect()
}

/// [`publish_journaled`] over a client of its own, signed in as `keys`
/// (NIP-42), shut down afterwards.
pub async fn publish_journaled_as(
    journal: &mut Journal,
    keys: &Keys,
    event: Event,
    payment: Option<TokenInfo>,
    urls: &[RelayUrl],
    timeout: Duration,
    min_accept: usize,
) -> Result<DispatchReport> {
    let client = relays::client(keys, urls).await;
    let r = publish_journaled(journal, &client, event, payment, urls, timeout, min_accept).await;
    relays::shutdown(&client).await;
    r
}

/// How many jobs `republish` sends at once.
pub const REPUBLISH_CONCURRENCY: usize = 32;

/// One journaled job to publish again.
pub struct Again {
    /// Its signed event.
    pub event: Event,
    /// Its payment summary.
    pub payment: Option<TokenInfo>,
    /// The relays it should be on.
    pub urls: Vec<RelayUrl>,
}

/// Publish every job in `jobs` to its relays that have not accepted it yet,
/// up to [`REPUBLISH_CONCURRENCY`] at once over one pool, all within
/// `timeout`; record the outcomes and report per job, in order.
pub async fn republish_many(
    journal: &mut Journal,
    keys: &Keys,
    jobs: Vec<Again>,
    timeout: Duration,
    min_accept: usize,
) -> Result<Vec<DispatchReport>> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut plans = Vec::with_capacity(jobs.len());
    let mut every: Vec<RelayUrl> = Vec::new();
    for job in jobs {
        let earlier = journal.accepted_relays(&job.event.id)?;
        let todo: Vec<RelayUrl> = job
            .urls
            .iter()
            .filter(|u| !earlier.contains(&u.to_string()))
            .cloned()
            .collect();
        for u in &todo {
            if !every.contains(u) {
                every.push(u.clone());
            }
        }
        plans.push((job, earlier, todo));
    }
    let client = relays::client(keys, &every).await;
    // Connected once up front, so the jobs in flight do not each dial.
    let down = relays::connect_all(&client, &every, timeout / 2).await;
    let down = &down;
    let fresh: Vec<Vec<RelayOutcome>> =
        futures::stream::iter(plans.iter().map(|(job, _, todo)| {
            let client = &client;
            async move {
                if todo.is_empty() {
                    return Vec::new();
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                relays::publish_reachable(client, &job.event, todo, left, down).await
            }
        }))
        .buffered(REPUBLISH_CONCURRENCY)
        .collect()
        .await;
    relays::shutdown(&client).await;
    let to_record: Vec<(EventId, Vec<RelayOutcome>)> = plans
        .iter()
        .zip(&fresh)
        .filter(|(_, o)| !o.is_empty())
        .map(|((job, _, _), o)| (job.event.id, o.clone()))
        .collect();
    journal.record_outcomes_many(&to_record)?;
    let reports = plans
        .into_iter()
        .zip(fresh)
        .map(|((job, earlier, _), fresh)| {
            let mut outcomes = accepted_earlier(&earlier);
            outcomes.extend(fresh);
            report(job.event, job.payment, outcomes, min_accept)
        });
    Ok(reports.collect())
}

/// Journal a freshly signed job (durable when this returns). The same
/// content signed in the same second is the same event (ids are content
/// hashes): already journaled, it is left as it is. Whether this call
/// added it.
#[allow(clippy::too_many_arguments)]
pub fn journal_new(
    journal: &mut Journal,
    keys: &Keys,
    spec: &JobSpec,
    event: &Event,
    urls: &[RelayUrl],
    idempotency_key: Option<&str>,
    rerun_of: Option<EventId>,
) -> Result<bool> {
    let to = Journaling {
        urls,
        idempotency_key,
        rerun_of,
        checking: false,
    };
    journal_as(journal, keys, spec, event, &to)
}

/// How a new job goes into the journal.
pub struct Journaling<'a> {
    /// Where it is to be published.
    pub urls: &'a [RelayUrl],
    /// `--idempotency-key`.
    pub idempotency_key: Option<&'a str>,
    /// The job it re-runs.
    pub rerun_of: Option<EventId>,
    /// Its pre-flight checks are still running: journaled `checking`,
    /// not sendable until [`Journal::checks_passed`].
    pub checking: bool,
}

/// [`journal_new`], optionally as `checking`. Whether this call added it.
pub fn journal_as(
    journal: &mut Journal,
    keys: &Keys,
    spec: &JobSpec,
    event: &Event,
    to: &Journaling<'_>,
) -> Result<bool> {
    if journal.get(&event.id)?.is_some() {
        tracing::info!(job = %event.id, "identical job already journaled");
        return Ok(false);
    }
    let payment = spec.token.as_ref().map(|t| t.info().clone());
    let hash = spec.content_hash(keys);
    let row = new_job(
        spec,
        event,
        payment.as_ref(),
        to.urls,
        to.idempotency_key,
        &hash,
        to.rerun_of,
    );
    if to.checking {
        journal.record_checking(&row)?;
    } else {
        journal.record_dispatch(&row)?;
    }
    Ok(true)
}

/// The payment summary of a journaled job (never the token).
pub fn journaled_payment(rec: &crate::journal::JobRecord) -> Option<TokenInfo> {
    rec.token
        .as_deref()
        .and_then(|t| PaymentToken::parse(t).ok())
        .map(|t| t.info().clone())
}

/// The journal row for a job about to be published.
pub fn new_job<'a>(
    spec: &'a JobSpec,
    event: &'a Event,
    payment: Option<&'a TokenInfo>,
    urls: &'a [RelayUrl],
    idempotency_key: Option<&'a str>,
    content_hash: &'a str,
    rerun_of: Option<EventId>,
) -> NewJob<'a> {
    NewJob {
        event,
        worker: spec.worker,
        cmd: &spec.cmd,
        args: &spec.args,
        token: spec.token.as_ref().map(|t| t.expose()),
        payment,
        relays: urls,
        idempotency_key,
        content_hash,
        rerun_of,
    }
}

/// A NIP-09 deletion request cancelling `job`: kind 5 with `e` and
/// `k` = 5100, signed by the job's own key.
pub fn cancel_event(job: &EventId, keys: &Keys, reason: &str) -> Result<Event> {
    EventBuilder::new(Kind::EventDeletion, reason)
        .tags([
            Tag::event(*job),
            Tag::custom(
                TagKind::Custom("k".into()),
                [crate::protocol::KIND_JOB_REQUEST.to_string()],
            ),
        ])
        .sign_with_keys(keys)
        .map_err(|e| Error::Runtime(format!("cannot sign the cancel request: {e}")))
}
