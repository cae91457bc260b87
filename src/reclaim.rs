//! Reclaim policy: which journaled jobs owe money back, and redeeming it
//! into the wallet. A job is eligible for its change (any state), or for
//! its payment when it failed, was cancelled, skipped or errored without
//! change, went stale, or (naming it explicitly) never reached a relay; a
//! payment locked to the worker only after its locktime. Each job ends as
//! an [`Outcome`] (data); the binary renders them.

use nostr_sdk::prelude::*;
use serde::Serialize;

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::journal::{Claim, JobRecord, Journal};
use crate::payment::PaymentToken;
use crate::protocol::{JobRef, JobState};
use crate::state::JobTracker;
use crate::wallet::{self, LocalWallet, Redeemed};

pub use crate::journal::ClaimKind;

/// Why a job is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Reclaimed before (the journal's final claim).
    AlreadyClaimed {
        /// `claimed` or `spent`.
        status: String,
        /// Amount.
        amount: u64,
        /// Unit.
        unit: String,
    },
    /// It succeeded and returned no change.
    NothingOwed,
    /// Its state does not make it eligible (yet).
    NotEligible(JobState),
    /// It carried no payment (or an unreadable one).
    Unpaid,
    /// Its payment is locked to the worker until this unix time.
    Locked {
        /// The locktime.
        until: u64,
    },
}

/// What to do with one job.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Nothing to redeem.
    Skip(Skip),
    /// Redeem this token.
    Claim(ClaimKind, PaymentToken),
}

/// The reclaim policy for one job (pure). `all` is `reclaim --all`, which
/// leaves jobs that never reached a relay to `republish`.
pub fn decide(
    rec: &JobRecord,
    t: &JobTracker,
    prior: Option<&Claim>,
    all: bool,
    now: Timestamp,
) -> Decision {
    if let Some(c) = prior {
        return Decision::Skip(Skip::AlreadyClaimed {
            status: c.status.as_str().to_string(),
            amount: c.amount,
            unit: c.unit.clone(),
        });
    }
    let state = t.state();
    let change = t.result().and_then(|r| r.change.clone());
    let payment = rec
        .token
        .as_deref()
        .and_then(|p| PaymentToken::parse(p).ok());
    let (kind, token) = if let Some(c) = change {
        (ClaimKind::Change, PaymentToken::parse_any_size(&c).ok())
    } else if matches!(
        state,
        JobState::Failed | JobState::Cancelled | JobState::Skipped | JobState::Error
    ) || t.is_stale(now)
        || (state == JobState::Unpublished && !all)
    {
        match payment {
            Some(p) if p.is_locked() => (ClaimKind::Refund, Some(p)),
            p => (ClaimKind::Payment, p),
        }
    } else if state == JobState::Success {
        return Decision::Skip(Skip::NothingOwed);
    } else {
        return Decision::Skip(Skip::NotEligible(state));
    };
    let Some(token) = token else {
        return Decision::Skip(Skip::Unpaid);
    };
    if kind == ClaimKind::Refund {
        if let Some(lt) = token.locktime() {
            if now.as_secs() < lt {
                return Decision::Skip(Skip::Locked { until: lt });
            }
        }
    }
    Decision::Claim(kind, token)
}

/// How one job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimResult {
    /// Nothing redeemed (see the message).
    Skipped,
    /// Credited to the wallet.
    Claimed,
    /// Someone spent it first.
    Spent,
    /// The mint refused or did not answer.
    Failed,
}

impl ClaimResult {
    /// The journal's and the JSON's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimResult::Skipped => "skipped",
            ClaimResult::Claimed => "claimed",
            ClaimResult::Spent => "spent",
            ClaimResult::Failed => "failed",
        }
    }
}

/// One job's reclaim outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Job id.
    pub job: String,
    /// What happened.
    pub result: ClaimResult,
    /// What was redeemed, if anything was tried.
    pub kind: Option<ClaimKind>,
    /// Amount credited (claimed) or not recovered (spent).
    pub amount: u64,
    /// Detail, one line.
    pub message: String,
}

/// Why a job was skipped, in words; `clock` writes a unix time.
pub fn skip_message(s: &Skip, now: Timestamp, clock: fn(u64) -> String) -> String {
    match s {
        Skip::AlreadyClaimed {
            status,
            amount,
            unit,
        } => format!("already reclaimed earlier ({status} {amount} {unit})"),
        Skip::NothingOwed => "succeeded without change: nothing is owed".into(),
        Skip::NotEligible(state) => format!("not eligible while {state}"),
        Skip::Unpaid => "unpaid job: nothing to reclaim".into(),
        Skip::Locked { until } => format!(
            "locked to the worker until {} (in {}s)",
            clock(*until),
            until - now.as_secs()
        ),
    }
}

/// The jobs to look at: every published job with a token (`all`), or the
/// named ones, each of which must be in the journal.
pub fn select(journal: &Journal, all: bool, jobs: &[String]) -> Result<Vec<JobRecord>> {
    if all {
        return Ok(journal
            .list(None, None, usize::MAX)?
            .into_iter()
            .filter(|r| r.published && r.token.is_some())
            .collect());
    }
    jobs.iter()
        .map(|j| {
            let r = JobRef::parse(j).map_err(Error::input)?;
            journal.get(&r.id)?.ok_or_else(|| {
                Error::input(format!(
                    "job {} is not in the journal (it holds the tokens)",
                    r.id
                ))
            })
        })
        .collect()
}

/// How [`reclaim`] runs.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// `reclaim --all`.
    pub all: bool,
    /// Now.
    pub now: Timestamp,
    /// The bound on every mint call.
    pub deadline: Deadline,
    /// The user's key: signs the refund path of locked payments.
    pub key: &'a Keys,
    /// Writes a unix time in skip messages.
    pub clock: fn(u64) -> String,
}

/// Decide and redeem every job of `records` (with its tracker, in the
/// same order), journaling each claim tried. A job that ends `failed` is
/// counted by the caller; an error here is the journal's or the wallet's.
pub async fn reclaim(
    journal: &mut Journal,
    w: &LocalWallet,
    records: &[JobRecord],
    trackers: Vec<JobTracker>,
    o: Options<'_>,
) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for (rec, mut t) in records.iter().zip(trackers) {
        if t.request.is_none() {
            if let Ok(ev) = rec.signed_event() {
                t.ingest(&ev);
                t.unpublished = !rec.published;
            }
        }
        let prior = journal.final_claim(&t.id)?;
        let (kind, token) = match decide(rec, &t, prior.as_ref(), o.all, o.now) {
            Decision::Skip(s) => {
                outcomes.push(Outcome {
                    job: rec.id.clone(),
                    result: ClaimResult::Skipped,
                    kind: None,
                    amount: 0,
                    message: skip_message(&s, o.now, o.clock),
                });
                continue;
            }
            Decision::Claim(kind, token) => (kind, token),
        };
        let out = redeem(w, &rec.id, kind, &token, &o).await?;
        journal.record_claim(&Claim {
            job_id: rec.id.clone(),
            kind,
            amount: out.amount,
            unit: token.info().unit.clone(),
            status: out.result.as_str().parse()?,
            message: out.message.clone(),
            at: o.now.as_secs(),
        })?;
        outcomes.push(out);
    }
    Ok(outcomes)
}

/// Redeem one job's token into the wallet, signing with the user's key
/// (the refund path of a locked payment).
async fn redeem(
    w: &LocalWallet,
    job: &str,
    kind: ClaimKind,
    token: &PaymentToken,
    o: &Options<'_>,
) -> Result<Outcome> {
    let keys = vec![wallet::cashu_secret(o.key.secret_key())?];
    let info = token.info();
    let unit = &info.unit;
    let at_mint = format!("waiting for mint {}", info.mint);
    let (result, amount, message) = match o
        .deadline
        .bound(&at_mint, w.redeem(token.expose(), keys))
        .await
    {
        Ok(Redeemed::Credited(amount)) => (
            ClaimResult::Claimed,
            amount,
            format!("{amount} {unit} credited from {}", info.mint),
        ),
        Ok(Redeemed::AlreadySpent) => (
            ClaimResult::Spent,
            info.amount,
            format!("already spent: {} {unit} not recovered", info.amount),
        ),
        Err(e) => (ClaimResult::Failed, 0, e.to_string()),
    };
    Ok(Outcome {
        job: job.to_string(),
        result,
        kind: Some(kind),
        amount,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: Option<&str>, published: bool) -> JobRecord {
        JobRecord {
            id: "00".repeat(32),
            created_at: 0,
            author: String::new(),
            worker: String::new(),
            cmd: "act".into(),
            args: vec![],
            event: String::new(),
            token: token.map(str::to_string),
            amount: None,
            unit: None,
            mint: None,
            relays: vec![],
            idempotency_key: None,
            content_hash: String::new(),
            rerun_of: None,
            state: crate::job_state::JobState::Unpublished,
            published,
            exit_code: None,
            duration: None,
            change_token: None,
            change_amount: None,
            updated_at: 0,
        }
    }

    fn tracker(unpublished: bool) -> JobTracker {
        let mut t = JobTracker::new(EventId::all_zeros());
        t.unpublished = unpublished;
        t
    }

    #[test]
    fn a_prior_claim_is_never_claimed_again() {
        let prior = Claim {
            job_id: "x".into(),
            kind: ClaimKind::Change,
            amount: 5,
            unit: "sat".into(),
            status: crate::journal::ClaimStatus::Claimed,
            message: String::new(),
            at: 0,
        };
        let d = decide(
            &record(None, true),
            &tracker(false),
            Some(&prior),
            false,
            Timestamp::from(0),
        );
        let Decision::Skip(s) = d else {
            panic!("claimed twice")
        };
        assert_eq!(
            skip_message(&s, Timestamp::from(0), |t| t.to_string()),
            "already reclaimed earlier (claimed 5 sat)"
        );
    }

    #[test]
    fn unpublished_jobs_are_eligible_only_by_name_and_unpaid_ones_owe_nothing() {
        let t = tracker(true);
        assert_eq!(t.state(), JobState::Unpublished);
        let now = Timestamp::from(1_700_000_000);
        // Named: eligible, but without a payment there is nothing to take.
        match decide(&record(None, false), &t, None, false, now) {
            Decision::Skip(Skip::Unpaid) => {}
            d => panic!("{d:?}"),
        }
        // --all leaves them to `republish`.
        match decide(&record(None, false), &t, None, true, now) {
            Decision::Skip(Skip::NotEligible(JobState::Unpublished)) => {}
            d => panic!("{d:?}"),
        }
    }

    /// A bearer token of made-up proofs (never valid at a mint).
    fn bearer(amount: u64) -> String {
        use cdk::nuts::{CurrencyUnit, Id, Proof, PublicKey, Token};
        use std::str::FromStr;
        let c = PublicKey::from_hex(
            "02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2",
        )
        .expect("point");
        let id = Id::from_str("009a1f293253e41e").expect("id");
        let proof = Proof::new(
            cdk::Amount::from(amount),
            id,
            cdk::secret::Secret::generate(),
            c,
        );
        Token::new(
            cdk::mint_url::MintUrl::from_str("http://127.0.0.1:3338").expect("url"),
            vec![proof],
            None,
            CurrencyUnit::Sat,
        )
        .to_v3_string()
    }

    #[test]
    fn a_named_job_that_never_reached_a_relay_gives_its_bearer_payment_back() {
        let token = bearer(8);
        let d = decide(
            &record(Some(&token), false),
            &tracker(true),
            None,
            false,
            Timestamp::from(1_700_000_000),
        );
        match d {
            Decision::Claim(ClaimKind::Payment, t) => assert_eq!(t.info().amount, 8),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn skip_messages_read_as_before() {
        let now = Timestamp::from(100);
        let clock: fn(u64) -> String = |t| format!("T{t}");
        assert_eq!(
            skip_message(&Skip::Locked { until: 160 }, now, clock),
            "locked to the worker until T160 (in 60s)"
        );
        assert_eq!(
            skip_message(&Skip::NotEligible(JobState::Running), now, clock),
            "not eligible while running"
        );
        assert_eq!(
            skip_message(&Skip::NothingOwed, now, clock),
            "succeeded without change: nothing is owed"
        );
    }
}
