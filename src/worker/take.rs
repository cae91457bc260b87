//! Taking one job: check it (command, client, payment), take its payment
//! before anything runs, queue it for a slot, then run it and report, or
//! end it unrun (cancelled, shutting down) with a refund.

use std::sync::Arc;
use std::time::Duration;

use nostr_sdk::prelude::*;

use super::pay::{refund_message, TakeError};
use super::run::run_job;
use super::shared::Shared;
use super::WorkerConfig;
use crate::job_state::JobState;
use crate::payment::PaymentToken;
use crate::protocol::{JobRequest, ResultReport};

/// How a job reached the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    /// Live, or caught up on start without any status from this worker.
    New,
    /// Caught up on start with a non-terminal status from this worker: an
    /// earlier run took its payment and was killed before the result.
    Interrupted,
}

/// The words today's clients show for an unpaid job from a pubkey the
/// worker does not let run free.
pub const NOT_WHITELISTED: &str = "Pubkey not whitelisted for this worker";

/// How a job is paid for.
#[derive(Debug)]
enum Paid {
    /// With this token.
    Token(PaymentToken),
    /// Unpaid, from an `unpaid_clients` key (up to `max_duration`).
    Unpaid,
    /// Unpaid, from a freelisted key (up to `freelist_timeout`).
    Free,
}

/// Why a job is refused (the `failed` status message).
fn validate(
    cfg: &WorkerConfig,
    req: &JobRequest,
    client: &PublicKey,
) -> std::result::Result<Paid, String> {
    if !cfg.allow_cmds.contains(&req.cmd) {
        return Err(format!(
            "command `{}` is not allowed here (allowed: {})",
            req.cmd,
            cfg.allow_cmds.join(", ")
        ));
    }
    let listed = |list: &[String]| {
        list.iter()
            .filter_map(|k| crate::config::parse_pubkey(k).ok())
            .any(|k| k == *client)
    };
    if !cfg.allow_clients.is_empty() && !listed(&cfg.allow_clients) {
        return Err("client not allowed".into());
    }
    let Some(raw) = &req.payment else {
        if listed(&cfg.unpaid_clients) {
            return Ok(Paid::Unpaid);
        }
        if listed(&cfg.freelist) {
            return Ok(Paid::Free);
        }
        return Err(NOT_WHITELISTED.into());
    };
    let token = PaymentToken::parse(raw).map_err(|e| format!("bad payment: {e}"))?;
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    if !cfg
        .mints
        .iter()
        .any(|m| norm(m) == norm(&token.info().mint))
    {
        return Err(format!(
            "mint {} not accepted (accepted: {})",
            token.info().mint,
            cfg.mints.join(", ")
        ));
    }
    let needed = cfg.price_per_second * cfg.min_duration;
    if token.info().amount < needed {
        return Err(format!(
            "payment {} sat is less than min_duration {} s x {} sat/s = {needed} sat",
            token.info().amount,
            cfg.min_duration,
            cfg.price_per_second
        ));
    }
    Ok(Paid::Token(token))
}

/// The money side of a taken job.
struct Taken {
    /// Sat credited to the worker (0 when unpaid).
    paid: u64,
    /// The payment's mint (empty when unpaid).
    mint: String,
    /// Paid with a token (else unpaid or free).
    token: bool,
    /// Unpaid from a freelisted key.
    free: bool,
}

pub(super) async fn take_job(shared: Arc<Shared>, job: Event, arrival: Arrival) {
    let Some(req) = JobRequest::from_event(&job) else {
        return;
    };
    if req.worker != shared.keys.public_key() {
        return; // addressed to us by `p` but meant for another worker
    }
    let paid_how = match validate(&shared.cfg, &req, &job.pubkey) {
        Ok(t) => t,
        Err(reason) => return refuse(&shared, &job, &reason).await,
    };
    let Some(taken) = take_payment(&shared, &job, paid_how, arrival).await else {
        return;
    };
    if let Ok(mut q) = shared.queued.lock() {
        q.insert(job.id, job.pubkey);
    }
    shared
        .report_status(&job, JobState::Queued, "waiting for a free slot")
        .await;
    let permit = shared.slots.clone().acquire_owned().await;
    if let Ok(mut q) = shared.queued.lock() {
        q.remove(&job.id);
    }
    let cancelled = shared.is_cancelled(&job.id);
    if cancelled || *shared.shutdown.borrow() {
        return end_unrun(&shared, &job, &taken, cancelled).await;
    }
    let _permit = permit;
    run_and_report(&shared, &job, &req, &taken).await;
}

/// A refused job: a `failed` status with the reason (and, for an unpaid
/// job from a key not let in, a result with it, as today's clients read it).
async fn refuse(shared: &Shared, job: &Event, reason: &str) {
    if reason == NOT_WHITELISTED {
        // No money involved: a result with the reason, as
        // today's clients read it.
        let report = ResultReport {
            exit_code: -1,
            error: Some(reason.to_string()),
            ..Default::default()
        };
        shared.report_result(job, &report).await;
    }
    shared.report_status(job, JobState::Failed, reason).await;
}

/// Take the payment before anything runs (a locked one needs our key);
/// `None` when it was refused (and the job reported `failed`).
async fn take_payment(shared: &Shared, job: &Event, how: Paid, arrival: Arrival) -> Option<Taken> {
    let free = matches!(how, Paid::Free);
    let Paid::Token(t) = how else {
        let mint = String::new();
        return Some(Taken {
            paid: 0,
            mint,
            token: false,
            free,
        });
    };
    let mint = t.info().mint.clone();
    let paid = match shared.take_payment(&t).await {
        Ok(a) => a,
        Err(TakeError::AlreadySpent) if arrival == Arrival::Interrupted => {
            // Our own earlier run redeemed it: the sats are in our wallet.
            let fee = shared.redeem_fee(&mint, t.info().proofs).await;
            let paid = t.info().amount.saturating_sub(fee);
            tracing::info!(job = %job.id, "resuming an interrupted job paid {paid} sat earlier");
            paid
        }
        Err(e) => {
            let msg = format!("payment refused: {e}");
            shared.report_status(job, JobState::Failed, &msg).await;
            return None;
        }
    };
    Some(Taken {
        paid,
        mint,
        token: true,
        free,
    })
}

/// A job that will not run (cancelled while queued, or the worker is
/// shutting down): a result with the refund, then the status.
async fn end_unrun(shared: &Shared, job: &Event, taken: &Taken, cancelled: bool) {
    let why = if cancelled {
        "cancelled"
    } else {
        "worker shutting down"
    };
    let c = shared.change(&taken.mint, taken.paid).await;
    let state = if cancelled {
        JobState::Cancelled
    } else {
        JobState::Failed
    };
    let msg = refund_message(why, &c);
    let report = ResultReport {
        exit_code: -1,
        change: c.token,
        note: c.note,
        ..Default::default()
    };
    shared.report_result(job, &report).await;
    shared.report_status(job, state, &msg).await;
}

/// The longest run the job gets: what it paid for (unpaid: the maximum, or
/// `freelist_timeout` for a freelisted key), never over `max_duration`.
fn time_limit(cfg: &WorkerConfig, taken: &Taken) -> Duration {
    let paid_secs = if !taken.token {
        if taken.free {
            cfg.freelist_timeout
        } else {
            cfg.max_duration
        }
    } else {
        taken
            .paid
            .checked_div(cfg.price_per_second)
            .unwrap_or(cfg.max_duration)
    };
    Duration::from_secs(paid_secs.min(cfg.max_duration).max(1))
}

/// Run the job, bill it, make change, and publish the result then the
/// terminal status (a client may stop listening at the status).
async fn run_and_report(shared: &Shared, job: &Event, req: &JobRequest, taken: &Taken) {
    let running = format!("{} {}", req.cmd, req.args.join(" "));
    shared.report_status(job, JobState::Running, &running).await;
    let price = shared.cfg.price_per_second;
    let paid = taken.paid;
    let limit = time_limit(&shared.cfg, taken);
    let mut o = run_job(shared, job, req, limit).await;
    let billed = ((o.duration.ceil() as u64).max(shared.cfg.min_duration) * price).min(paid);
    let c = shared.change(&taken.mint, paid - billed).await;
    if paid > 0 {
        tracing::info!(
            job = %job.id,
            "paid {paid} sat, billed {billed}, change {} (+{} mint fees), kept {}",
            c.amount,
            c.fees,
            paid - c.amount - c.fees
        );
    }
    o.change = c.token;
    o.note = c.note;
    let state = if o.exit_code == 0 {
        JobState::Success
    } else {
        JobState::Failed
    };
    let mut msg = format!("exit {} in {:.1}s", o.exit_code, o.duration);
    if o.change.is_some() {
        msg.push_str(&format!("; change {} sat", c.amount));
    } else if let Some(n) = &o.note {
        msg.push_str(&format!("; {n}"));
    }
    shared.report_result(job, &o).await;
    shared.report_status(job, state, &msg).await;
}
