//! Dispatching a job: the one-way flow parse -> build -> sign -> publish ->
//! report. Input is a [`JobSpec`] whose every field is already validated;
//! the result is a [`DispatchReport`] the CLI renders. Secrets are
//! NIP-44 (v2) encrypted to the worker here, at build time.

use std::time::Duration;

use nostr_sdk::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
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
        content: String::new(),
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

/// Publish a signed event and report.
pub async fn publish(
    keys: &Keys,
    event: Event,
    payment: Option<TokenInfo>,
    urls: &[RelayUrl],
    timeout: Duration,
    min_accept: usize,
) -> DispatchReport {
    let outcomes = relays::publish(keys, &event, urls, timeout).await;
    report(event, payment, outcomes, min_accept)
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
    }
}
