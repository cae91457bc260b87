//! `wallet ...` and `reclaim`. (The payment step of `rerun` is
//! [`jobctl::payment_plan`].)

use clap::{Args, Subcommand};
use std::time::Duration;

use crate::cli::render::{self, short_id};
use jobctl::error::{exit, Error, Result};
use jobctl::follow;
use jobctl::journal::{Claim, JobRecord};
use jobctl::payment::PaymentToken;
use jobctl::payment_plan;
use jobctl::protocol::{JobRef, JobState};
use jobctl::relays;
use jobctl::wallet::{self, Reconciled};
use nostr_sdk::prelude::*;
use serde::Serialize;

use super::{read_stdin, relays_for, runtime, to_json, Ctx};

pub fn wallet(ctx: &Ctx, cmd: WalletCommand) -> Result<i32> {
    // One deadline for commands that talk to a mint.
    let deadline = match &cmd {
        WalletCommand::Receive { timeout, .. }
        | WalletCommand::Send { timeout, .. }
        | WalletCommand::Pay { timeout, .. } => {
            let default = match timeout {
                Some(_) => Duration::ZERO,
                None => ctx.config()?.mint_timeout,
            };
            ctx.start_deadline(timeout.as_deref(), default)?
        }
        WalletCommand::Mint { timeout, .. } | WalletCommand::Check { timeout, .. } => {
            ctx.start_deadline(Some(timeout), Duration::ZERO)?
        }
        WalletCommand::Balance { .. } | WalletCommand::Mints { .. } => ctx.deadline(),
    };
    let rt = runtime()?;
    rt.block_on(async {
        let w = ctx.wallet().await?;
        match cmd {
            WalletCommand::Balance { json } => {
                // A dead operation may have left proofs listed that the
                // mint has spent: recover first (bounded) when it did.
                let mut journal = ctx.existing_journal()?;
                for r in w
                    .recover_if_needed(journal.as_mut(), wallet::RECOVERY_TIMEOUT)
                    .await?
                {
                    if r.changed() {
                        ctx.say(check_summary(&r));
                    }
                }
                let b = w.balances().await?;
                if json {
                    ctx.print(&to_json(&b)?)?;
                } else {
                    // "held at the mint" only shows when a mint holds some.
                    let held = b.iter().any(|x| x.held > 0);
                    let mut head = vec!["mint", "unit", "balance", "sent, not yet redeemed"];
                    if held {
                        head.push("held at the mint");
                    }
                    let mut t = render::table(&head, render::stderr_color());
                    for x in &b {
                        let mut row = vec![
                            x.mint.clone(),
                            x.unit.clone(),
                            x.amount.to_string(),
                            x.pending.to_string(),
                        ];
                        if held {
                            row.push(x.held.to_string());
                        }
                        t.add_row(row);
                    }
                    ctx.say(t.to_string());
                    let total: u64 = b.iter().filter(|x| x.unit == "sat").map(|x| x.amount).sum();
                    ctx.print(&total.to_string())?;
                }
            }
            WalletCommand::Mints { json } => {
                let m = w.mints().await;
                if json {
                    ctx.print(&to_json(&m)?)?;
                } else {
                    for x in &m {
                        ctx.print(x)?;
                    }
                }
            }
            WalletCommand::Receive { token, .. } => {
                let raw = match token.as_deref() {
                    None | Some("-") => read_stdin("the token")?,
                    Some(t) => t.to_string(),
                };
                let t = PaymentToken::parse_any_size(&raw)?;
                let amount = deadline
                    .bound(
                        &format!("waiting for mint {}", t.info().mint),
                        w.receive(t.expose(), vec![]),
                    )
                    .await?;
                ctx.say(format!(
                    "received {amount} {} from {}",
                    t.info().unit,
                    t.info().mint
                ));
                ctx.print(&amount.to_string())?;
            }
            WalletCommand::Send { amount, mint, .. } => {
                if amount == 0 {
                    return Err(Error::input("the amount must be at least 1 sat"));
                }
                let mint = match mint {
                    Some(m) => m,
                    None => payment_plan::richest_mint(&w, amount).await?,
                };
                // Recorded in the journal before the mint is asked, so a
                // token cut off before it reached stdout is taken back; the
                // wallet's lock is held until it is marked delivered, so no
                // other process takes it back meanwhile.
                let _lock = wallet::lock(w.dir(), wallet::LOCK_WAIT)?;
                let mut journal = ctx.journal()?;
                let sent = deadline
                    .bound(
                        &format!("waiting for mint {mint}"),
                        w.send_logged(&mint, amount, None, Some(&mut journal), "wallet-send"),
                    )
                    .await?;
                ctx.say(format!(
                    "sent {amount} sat from {mint}; the token below is money: keep it safe"
                ));
                ctx.print(&sent.token)?;
                journal.send_state(&sent.op_id, "delivered", "printed on stdout")?;
            }
            WalletCommand::Mint { amount, mint, .. } => {
                if amount == 0 {
                    return Err(Error::input("the amount must be at least 1 sat"));
                }
                let wait = deadline.remaining();
                let got = deadline
                    .bound(
                        &format!("minting at {mint}"),
                        w.mint(&mint, amount, wait, |invoice| {
                            eprintln!("pay this invoice to mint {amount} sat at {mint}:");
                            eprintln!("{}", render::sanitize(invoice));
                        }),
                    )
                    .await?;
                ctx.say(format!("minted {got} sat at {mint}"));
                ctx.print(&got.to_string())?;
            }
            WalletCommand::Pay { bolt11, mint, .. } => {
                let mint = match mint {
                    Some(m) => m,
                    None => payment_plan::richest_mint(&w, 1).await?,
                };
                let (amount, fee) = deadline
                    .bound(&format!("waiting for mint {mint}"), w.pay(&mint, &bolt11))
                    .await?;
                ctx.say(format!("paid {amount} sat (fee {fee} sat) from {mint}"));
                ctx.print(&format!("{amount}"))?;
            }
            WalletCommand::Check { mint, json, .. } => {
                let mut journal = ctx.existing_journal()?;
                let mints = match mint {
                    Some(m) => vec![m],
                    None => w.mints().await,
                };
                // One --timeout for the whole check, every mint included.
                let mut reports = Vec::new();
                for m in &mints {
                    reports.push(
                        w.reconcile(m, journal.as_mut(), deadline.remaining())
                            .await?,
                    );
                }
                let problems = reports.iter().any(|r| !r.problems.is_empty());
                if json {
                    ctx.print(&to_json(&reports)?)?;
                } else {
                    for r in &reports {
                        ctx.say(check_summary(r));
                        for p in &r.problems {
                            render::print_warning(&format!("{}: {p}", r.mint));
                        }
                    }
                    if reports.is_empty() {
                        ctx.say("the wallet has no mints yet: nothing to check");
                    }
                    let fixed = reports.iter().filter(|r| r.changed()).count();
                    ctx.print(&format!(
                        "{} mint(s) checked, {fixed} with fixes",
                        reports.len()
                    ))?;
                }
                return Ok(if problems { exit::FAILURE } else { exit::OK });
            }
        }
        Ok(exit::OK)
    })
}

/// One line per mint for `wallet check`.
fn check_summary(r: &Reconciled) -> String {
    let mut parts = Vec::new();
    if r.recovered > 0 {
        parts.push(format!(
            "{} interrupted operation(s) completed",
            r.recovered
        ));
    }
    if r.rolled_back > 0 {
        parts.push(format!("{} rolled back", r.rolled_back));
    }
    if r.stale_swaps_dropped > 0 {
        parts.push(format!(
            "{} swap(s) the mint never executed dropped",
            r.stale_swaps_dropped
        ));
    }
    if r.marked_spent > 0 {
        parts.push(format!(
            "{} sat listed as spendable were spent at the mint (no longer counted)",
            r.marked_spent
        ));
    }
    if r.released > 0 {
        parts.push(format!(
            "{} sat reserved by dead operations are spendable again",
            r.released
        ));
    }
    if r.held_at_mint > 0 {
        parts.push(format!(
            "{} sat held: the mint has them pending (a swap cut off mid-way); checked again next time",
            r.held_at_mint
        ));
    }
    if r.reclaimed_sends > 0 {
        parts.push(format!(
            "{} token(s) never journaled or handed out taken back ({} sat)",
            r.reclaimed_sends, r.reclaimed_amount
        ));
    }
    if r.left_pending > 0 {
        parts.push(format!(
            "{} operation(s) left for a later check",
            r.left_pending
        ));
    }
    if r.locked_orphans > 0 {
        parts.push(format!(
            "{} sat sit in proofs locked to someone else",
            r.locked_orphans
        ));
    }
    if parts.is_empty() {
        format!("{}: in line with the mint, nothing to fix", r.mint)
    } else {
        format!("{}: {}", r.mint, parts.join("; "))
    }
}

/// One job's reclaim outcome.
#[derive(Debug, Serialize)]
struct Outcome {
    job: String,
    result: String,
    kind: Option<String>,
    amount: u64,
    message: String,
}

pub fn reclaim(ctx: &Ctx, a: ReclaimArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let key = ctx.key(&cfg)?;
    let Some(mut journal) = ctx.existing_journal()? else {
        if a.all {
            ctx.say("nothing to reclaim: there is no journal yet");
            return Ok(exit::OK);
        }
        return Err(Error::input(
            "there is no journal yet, so no job to reclaim",
        ));
    };
    let records: Vec<JobRecord> = if a.all {
        journal
            .list(None, None, usize::MAX)?
            .into_iter()
            .filter(|r| r.published && r.token.is_some())
            .collect()
    } else {
        a.jobs
            .iter()
            .map(|j| {
                let r = JobRef::parse(j).map_err(Error::input)?;
                journal.get(&r.id)?.ok_or_else(|| {
                    Error::input(format!(
                        "job {} is not in the journal (it holds the tokens)",
                        r.id
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?
    };
    let urls = relays_for(&cfg, &a.read.relays)?;
    let deadline = ctx.start_deadline(a.read.timeout.as_deref(), cfg.query_timeout)?;
    let ids: Vec<EventId> = records
        .iter()
        .filter_map(|r| EventId::from_hex(&r.id).ok())
        .collect();
    let rt = runtime()?;
    let mut outcomes = Vec::new();
    let mut failures = 0;
    rt.block_on(async {
        let trackers = if urls.is_empty() || ids.is_empty() {
            ids.iter()
                .map(|id| jobctl::state::JobTracker::new(*id))
                .collect()
        } else {
            let client = relays::reader(Some(&key.keys), &urls, false).await;
            // Half the deadline to look: the mint calls need the rest.
            let (t, reach) = follow::load_jobs_reach(&client, &urls, &ids, deadline.share(2)).await;
            relays::shutdown(&client).await;
            if !reach.complete() {
                render::print_warning(&format!(
                    "results and change may be missing: {}",
                    reach.describe()
                ));
            }
            t
        };
        let w = ctx.wallet().await?;
        if a.all {
            // Tokens made but never journaled or handed out come back too.
            for r in w
                .reconcile_all(Some(&mut journal), deadline.remaining())
                .await?
            {
                if r.reclaimed_sends > 0 {
                    ctx.say(format!(
                        "{}: took back {} token(s) never journaled ({} sat)",
                        r.mint, r.reclaimed_sends, r.reclaimed_amount
                    ));
                }
            }
        }
        let now = Timestamp::now();
        for (rec, mut t) in records.iter().zip(trackers) {
            let id = t.id;
            if t.request.is_none() {
                if let Ok(ev) = rec.signed_event() {
                    t.ingest(&ev);
                    t.unpublished = !rec.published;
                }
            }
            let mut out = Outcome {
                job: rec.id.clone(),
                result: "skipped".into(),
                kind: None,
                amount: 0,
                message: String::new(),
            };
            if let Some(c) = journal.final_claim(&id)? {
                out.message = format!(
                    "already reclaimed earlier ({} {} {})",
                    c.status, c.amount, c.unit
                );
                outcomes.push(out);
                continue;
            }
            let state = t.state();
            let change = t.result().and_then(|r| r.change.clone());
            let payment = rec
                .token
                .as_deref()
                .and_then(|p| PaymentToken::parse(p).ok());
            let (kind, token) = if let Some(c) = change {
                ("change", PaymentToken::parse_any_size(&c).ok())
            } else if matches!(
                state,
                JobState::Failed | JobState::Cancelled | JobState::Skipped | JobState::Error
            ) || t.is_stale(now)
                || (state == JobState::Unpublished && !a.all)
            {
                match &payment {
                    Some(p) if p.is_locked() => ("refund", Some(p.clone())),
                    Some(p) => ("payment", Some(p.clone())),
                    None => ("payment", None),
                }
            } else {
                out.message = match state {
                    JobState::Success => "succeeded without change: nothing is owed".into(),
                    s => format!("not eligible while {s}"),
                };
                outcomes.push(out);
                continue;
            };
            let Some(token) = token else {
                out.message = "unpaid job: nothing to reclaim".into();
                outcomes.push(out);
                continue;
            };
            if kind == "refund" {
                if let Some(lt) = token.locktime() {
                    if now.as_secs() < lt {
                        out.message = format!(
                            "locked to the worker until {} (in {}s)",
                            render::clock(lt),
                            lt - now.as_secs()
                        );
                        outcomes.push(out);
                        continue;
                    }
                }
            }
            let keys = vec![wallet::cashu_secret(key.keys.secret_key())?];
            let unit = token.info().unit.clone();
            out.kind = Some(kind.to_string());
            let at_mint = format!("waiting for mint {}", token.info().mint);
            match deadline
                .bound(&at_mint, w.receive(token.expose(), keys))
                .await
            {
                Ok(amount) => {
                    out.result = "claimed".into();
                    out.amount = amount;
                    out.message = format!("{amount} {unit} credited from {}", token.info().mint);
                }
                Err(e) if e.to_string().contains("already spent") => {
                    out.result = "spent".into();
                    out.amount = token.info().amount;
                    out.message = format!(
                        "already spent: {} {unit} not recovered",
                        token.info().amount
                    );
                }
                Err(e) => {
                    failures += 1;
                    out.result = "failed".into();
                    out.message = e.to_string();
                }
            }
            journal.record_claim(&Claim {
                job_id: rec.id.clone(),
                kind: kind.parse()?,
                amount: out.amount,
                unit,
                status: out.result.parse()?,
                message: out.message.clone(),
                at: now.as_secs(),
            })?;
            outcomes.push(out);
        }
        Ok::<_, Error>(())
    })?;
    if a.json {
        ctx.print(&to_json(&outcomes)?)?;
    } else {
        let mut t = render::table(
            &["job", "kind", "result", "amount", "detail"],
            render::stderr_color(),
        );
        for o in &outcomes {
            t.add_row(vec![
                short_id(&o.job),
                o.kind.clone().unwrap_or_else(|| "-".into()),
                o.result.clone(),
                o.amount.to_string(),
                render::one_line(&o.message),
            ]);
            ctx.print(&format!("{} {} {}", o.job, o.result, o.amount))?;
        }
        ctx.say(t.to_string());
        let total: u64 = outcomes
            .iter()
            .filter(|o| o.result == "claimed")
            .map(|o| o.amount)
            .sum();
        ctx.say(format!("reclaimed {total} sat into the wallet"));
    }
    Ok(if failures > 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Spendable balance per mint and unit (plus amounts sent but not yet redeemed).
    Balance {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Mints this wallet has used.
    Mints {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Redeem a token into the wallet (`-` or absent reads stdin).
    Receive {
        /// The token.
        token: Option<String>,
        /// Bound on the whole command, every mint call included
        /// [default: config timeouts.mint, else 30s].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Take AMOUNT sat out of the wallet as a token, printed on stdout.
    Send {
        /// Amount in sat.
        amount: u64,
        /// Mint to send from [default: the one with the largest balance].
        #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
        mint: Option<String>,
        /// Bound on the whole command, every mint call included
        /// [default: config timeouts.mint, else 30s].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Buy AMOUNT sat of ecash at a mint over Lightning: prints the invoice,
    /// waits for payment, claims the proofs.
    Mint {
        /// Amount in sat.
        amount: u64,
        /// The mint.
        #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
        mint: String,
        /// Bound on the whole command: the quote, waiting for the invoice
        /// to be paid, and claiming the proofs.
        #[arg(long, default_value = "10m", value_name = "DURATION")]
        timeout: String,
    },
    /// Pay a Lightning invoice with ecash (melt).
    Pay {
        /// The BOLT11 invoice.
        bolt11: String,
        /// Mint to pay from [default: the one with the largest balance].
        #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
        mint: Option<String>,
        /// Bound on the whole command, every mint call included
        /// [default: config timeouts.mint, else 30s].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Reconcile the wallet with its mints and report what was fixed:
    /// finish or roll back operations a crash or kill cut off, mark proofs
    /// the mint says are spent, release reserved proofs of dead operations,
    /// and take back tokens made but never journaled or handed out.
    Check {
        /// Only this mint [default: every mint in the wallet].
        #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
        mint: Option<String>,
        /// Bound on the whole check, every mint included.
        #[arg(long, default_value = "30s", value_name = "DURATION")]
        timeout: String,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReclaimArgs {
    /// Jobs to reclaim (journaled ones: the journal holds their tokens).
    #[arg(value_name = "JOB", required_unless_present = "all")]
    pub jobs: Vec<String>,

    /// Every eligible published job in the journal.
    #[arg(long, conflicts_with = "jobs")]
    pub all: bool,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: super::ReadArgs,
}
