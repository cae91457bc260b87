//! `cancel`, `republish`, `stats`: managing jobs through the journal.

use clap::Args;
use std::collections::BTreeMap;

use crate::cli::render::{self, run_time, short_id, short_npub};
use jobctl::config;
use jobctl::dispatch;
use jobctl::error::{exit, Error, Result};
use jobctl::follow;
use jobctl::journal::JobRecord;
use jobctl::payment::PaymentToken;
use jobctl::protocol::JobRef;
use jobctl::relays;
use nostr_sdk::prelude::*;
use serde::Serialize;

use super::{min_accept_for, relays_for, require_relays, runtime, to_json, Ctx};

pub fn cancel(ctx: &Ctx, a: CancelArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(a.read.timeout.as_deref(), cfg.query_timeout)?;
    let r = JobRef::parse(&a.job).map_err(Error::input)?;
    let mut urls = relays_for(&cfg, &a.read.relays)?;
    urls.extend(
        r.relays
            .iter()
            .filter(|u| !urls.contains(u))
            .cloned()
            .collect::<Vec<_>>(),
    );
    require_relays(&urls)?;
    let key = ctx.key(&cfg)?;
    let mut journal = ctx.existing_journal()?;
    let stored = journal
        .as_ref()
        .map(|j| j.get(&r.id))
        .transpose()?
        .flatten();
    let rt = runtime()?;
    let color = render::stderr_color();
    let (tracker, outcomes, (deletion, loom, loom_accepted)) = rt.block_on(async {
        let client = relays::client(&key.keys, &urls).await;
        // Half the deadline to look, so the deletion still has time to go out.
        let (mut t, reach) =
            follow::load_jobs_reach(&client, &urls, &[r.id], deadline.share(2)).await;
        let mut tracker = t.pop().ok_or_else(|| Error::input("no job given"))?;
        if tracker.request.is_none() {
            if let Some(ev) = stored.as_ref().map(|s| s.signed_event()).transpose()? {
                tracker.ingest(&ev);
            }
        }
        let Some(req) = tracker.request.clone() else {
            relays::shutdown(&client).await;
            if !reach.complete() {
                return Err(follow::reach_error(
                    &reach,
                    deadline.total(),
                    &format!("looking up job {}", r.id),
                ));
            }
            return Err(Error::Runtime(format!(
                "job {} not found in the journal or on {} relay(s)",
                r.id,
                urls.len()
            )));
        };
        if !reach.complete() {
            render::print_warning(&reach.describe());
        }
        if req.pubkey != key.keys.public_key() {
            return Err(Error::input(format!(
                "job {} was requested by {}, not by your key; only its author can cancel it",
                short_id(&r.id.to_hex()),
                short_npub(&req.pubkey.to_hex())
            )));
        }
        let state = tracker.state();
        if state.is_terminal() && !a.force {
            return Err(Error::input(format!(
                "job {} is already {state}; pass --force to send the cancel anyway",
                short_id(&r.id.to_hex())
            )));
        }
        let deletion = dispatch::cancel_event(&r.id, &key.keys, &a.reason)?;
        // Also the Loom cancel (kind 5102, `e` job, `p` worker): swarmstr's
        // workers listen for it, not for NIP-09. Both go out together.
        // The worker: from the request, else its first `p` tag (how
        // every client today reads it).
        let worker = jobctl::protocol::JobRequest::from_event(&req)
            .map(|j| j.worker)
            .or_else(|| req.tags.public_keys().next().copied());
        let Some(worker) = worker else {
            return Err(Error::input(format!(
                "job {} names no worker to cancel it with",
                short_id(&r.id.to_hex())
            )));
        };
        let loom = jobctl::protocol::cancel_request(&r.id, &worker, &a.reason)
            .sign_with_keys(&key.keys)
            .map_err(|e| Error::Runtime(format!("cannot sign the cancel request: {e}")))?;
        let remaining = deadline.remaining();
        let (out, loom_out) = tokio::join!(
            relays::publish_with(&client, &deletion, &urls, remaining),
            relays::publish_with(&client, &loom, &urls, remaining)
        );
        let loom_accepted = relays::accepted(&loom_out);
        tracing::info!(
            "kind 5102 cancel {} accepted by {loom_accepted}/{} relays",
            loom.id,
            loom_out.len()
        );
        relays::shutdown(&client).await;
        Ok((tracker, out, (deletion, loom, loom_accepted)))
    })?;
    let accepted = relays::accepted(&outcomes);
    if let (Some(j), true) = (journal.as_mut(), accepted > 0) {
        j.note(
            &tracker.id,
            "cancel-requested",
            &format!(
                "deletion {} accepted by {accepted}/{} relays; kind 5102 cancel {} by {loom_accepted}",
                deletion.id,
                outcomes.len(),
                loom.id
            ),
        )?;
    }
    if a.json {
        let v = serde_json::json!({
            "job": tracker.id.to_hex(), "deletion": deletion.id.to_hex(), "event": deletion,
            "relays": outcomes, "accepted": accepted,
            "loom_cancel": loom.id.to_hex(), "loom_event": loom, "loom_accepted": loom_accepted,
        });
        ctx.print(&v.to_string())?;
    } else {
        ctx.say(render::relay_table(&outcomes, color));
        ctx.say(format!(
            "cancel of job {} sent: accepted by {accepted}/{} relays (the worker skips it if it has not started)",
            short_id(&tracker.id.to_hex()),
            outcomes.len()
        ));
        ctx.print(&deletion.id.to_hex())?;
    }
    if accepted == 0 {
        render::print_error(&format!(
            "no relay accepted the cancel request ({})",
            relays::failure_summary(&outcomes)
        ));
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

pub fn republish(ctx: &Ctx, a: RepublishArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let flags = relays_for(&cfg, &a.relays)?;
    // One deadline for every job's publish.
    let deadline = ctx.start_deadline(a.timeout.as_deref(), cfg.publish_timeout)?;
    let min_accept = min_accept_for(a.min_accept, &cfg)?;
    let Some(mut journal) = ctx.existing_journal()? else {
        if a.all {
            ctx.say("nothing to republish: there is no journal yet");
            return Ok(exit::OK);
        }
        return Err(Error::input(
            "there is no journal yet, so no job to republish",
        ));
    };
    // A job whose payment was reclaimed must never go out again.
    let reclaimed = |r: &JobRecord| {
        EventId::from_hex(&r.id)
            .ok()
            .and_then(|id| journal.final_claim(&id).ok().flatten())
            .is_some()
    };
    let records: Vec<JobRecord> = if a.all {
        journal
            .unpublished()?
            .into_iter()
            .filter(|r| !reclaimed(r))
            .collect()
    } else {
        a.jobs
            .iter()
            .map(|j| {
                let r = JobRef::parse(j).map_err(Error::input)?;
                journal
                    .get(&r.id)?
                    .ok_or_else(|| Error::input(format!("job {} is not in the journal", r.id)))
            })
            .collect::<Result<Vec<_>>>()?
    };
    if let Some(r) = records.iter().find(|r| reclaimed(r)) {
        return Err(Error::input(format!(
            "job {}'s payment was reclaimed; it cannot be published again (dispatch a new job)",
            short_id(&r.id)
        )));
    }
    if records.is_empty() {
        ctx.say("nothing to republish: every journaled job reached a relay");
        return Ok(exit::OK);
    }
    let key = ctx.key(&cfg)?;
    let rt = runtime()?;
    let color = render::stderr_color();
    let mut failures = 0;
    for rec in &records {
        let urls = if !a.relays.is_empty() {
            flags.clone()
        } else {
            let own =
                config::parse_relays(rec.relays.iter().map(String::as_str)).unwrap_or_default();
            if own.is_empty() {
                cfg.relays.clone()
            } else {
                own
            }
        };
        if urls.is_empty() {
            return Err(Error::input(format!(
                "job {} has no relays on record: pass --relay URL",
                short_id(&rec.id)
            )));
        }
        let event = rec.signed_event()?;
        let payment = rec
            .token
            .as_deref()
            .and_then(|t| PaymentToken::parse(t).ok())
            .map(|t| t.info().clone());
        let report = rt.block_on(async {
            let client = relays::client(&key.keys, &urls).await;
            let r = dispatch::publish_journaled(
                &mut journal,
                &client,
                event,
                payment,
                &urls,
                deadline.remaining(),
                min_accept,
            )
            .await;
            relays::shutdown(&client).await;
            r
        })?;
        if !report.ok() {
            failures += 1;
        }
        if a.json {
            ctx.print(&to_json(&report)?)?;
        } else {
            ctx.say(format!(
                "job {}{}: accepted by {}/{} relays",
                short_id(&rec.id),
                rec.amount
                    .map(|amt| format!(" ({amt} {})", rec.unit.as_deref().unwrap_or("sat")))
                    .unwrap_or_default(),
                report.accepted,
                report.relays.len()
            ));
            ctx.say(render::relay_table(&report.relays, color));
            ctx.print(&report.id)?;
        }
    }
    if failures > 0 {
        render::print_error(&format!(
            "{failures} job(s) still below {min_accept} relay(s){}",
            if deadline.expired() {
                format!(
                    " (timed out after {})",
                    config::format_duration(deadline.total())
                )
            } else {
                String::new()
            }
        ));
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

/// Statistics over a set of journaled jobs.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Jobs.
    pub jobs: usize,
    /// Count per state.
    pub by_status: BTreeMap<String, usize>,
    /// success / (success + failed + error), when any finished.
    pub success_rate: Option<f64>,
    /// Median run time of jobs with a result.
    pub median_duration: Option<f64>,
    /// Paid per unit (published jobs).
    pub paid: BTreeMap<String, u64>,
    /// Change returned per unit.
    pub change_returned: BTreeMap<String, u64>,
    /// Paid for jobs that never reached a relay (still held in the journal).
    pub unpublished_amount: BTreeMap<String, u64>,
    /// Redeemed back into the wallet by `reclaim` (change, refunds).
    pub reclaimed: BTreeMap<String, u64>,
    /// Owed back but already spent when reclaimed.
    pub lost: BTreeMap<String, u64>,
}

fn compute(records: &[&JobRecord], claims: &[jobctl::journal::Claim]) -> Stats {
    let mut s = Stats {
        jobs: records.len(),
        ..Default::default()
    };
    let mut durations = Vec::new();
    for r in records {
        *s.by_status.entry(r.state.as_str().to_string()).or_default() += 1;
        if let Some(d) = r.duration {
            durations.push(d);
        }
        let unit = r.unit.clone().unwrap_or_else(|| "sat".into());
        if let Some(amt) = r.amount {
            let bucket = if r.published {
                &mut s.paid
            } else {
                &mut s.unpublished_amount
            };
            *bucket.entry(unit.clone()).or_default() += amt;
        }
        if let Some(c) = r.change_amount {
            *s.change_returned.entry(unit).or_default() += c;
        }
    }
    for c in claims
        .iter()
        .filter(|c| records.iter().any(|r| r.id == c.job_id))
    {
        let bucket = if c.status == jobctl::journal::ClaimStatus::Claimed {
            &mut s.reclaimed
        } else {
            &mut s.lost
        };
        *bucket.entry(c.unit.clone()).or_default() += c.amount;
    }
    let count = |k: &str| s.by_status.get(k).copied().unwrap_or(0);
    let finished = count("success") + count("failed") + count("error");
    if finished > 0 {
        s.success_rate = Some(count("success") as f64 / finished as f64);
    }
    durations.sort_by(|a, b| a.total_cmp(b));
    if !durations.is_empty() {
        let n = durations.len();
        s.median_duration = Some(if n % 2 == 1 {
            durations[n / 2]
        } else {
            (durations[n / 2 - 1] + durations[n / 2]) / 2.0
        });
    }
    s
}

fn money(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(u, a)| format!("{a} {u}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn stats(ctx: &Ctx, a: StatsArgs) -> Result<i32> {
    let since = a
        .since
        .as_deref()
        .map(|s| {
            config::parse_time(s, ctx.now()).map_err(|e| Error::input(format!("--since: {e}")))
        })
        .transpose()?
        .map(|t| t.as_secs())
        .unwrap_or(0);
    let (records, claims) = match ctx.existing_journal()? {
        Some(j) => (j.all_since(since)?, j.claims_since(since)?),
        None => (Vec::new(), Vec::new()),
    };
    let all: Vec<&JobRecord> = records.iter().collect();
    let overall = compute(&all, &claims);
    let mut per_worker: BTreeMap<String, Vec<&JobRecord>> = BTreeMap::new();
    for r in &records {
        per_worker.entry(r.worker.clone()).or_default().push(r);
    }
    let workers: BTreeMap<String, Stats> = per_worker
        .iter()
        .map(|(w, rs)| (w.clone(), compute(rs, &claims)))
        .collect();
    if a.json {
        let v = serde_json::json!({ "overall": overall, "workers": workers });
        ctx.print(&v.to_string())?;
        return Ok(exit::OK);
    }
    let color = render::stderr_color();
    let mut t = render::table(
        &[
            "worker",
            "jobs",
            "success",
            "failed",
            "running",
            "pending",
            "other",
            "success rate",
            "median",
            "paid",
            "change",
            "reclaimed",
            "lost",
        ],
        color,
    );
    let row = |name: String, s: &Stats| {
        let c = |k: &str| s.by_status.get(k).copied().unwrap_or(0);
        let known = c("success") + c("failed") + c("running") + c("queued") + c("pending");
        vec![
            name,
            s.jobs.to_string(),
            c("success").to_string(),
            c("failed").to_string(),
            (c("running") + c("queued")).to_string(),
            c("pending").to_string(),
            (s.jobs - known).to_string(),
            s.success_rate
                .map(|r| format!("{:.0}%", r * 100.0))
                .unwrap_or_else(|| "-".into()),
            s.median_duration
                .map(run_time)
                .unwrap_or_else(|| "-".into()),
            money(&s.paid),
            money(&s.change_returned),
            money(&s.reclaimed),
            money(&s.lost),
        ]
    };
    for (w, s) in &workers {
        t.add_row(row(short_npub(w), s));
    }
    t.add_row(row("all".into(), &overall));
    ctx.say(t.to_string());
    let states: Vec<String> = overall
        .by_status
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    ctx.say(format!(
        "{} job(s): {}{}",
        overall.jobs,
        if states.is_empty() {
            "none".to_string()
        } else {
            states.join(", ")
        },
        if overall.unpublished_amount.is_empty() {
            String::new()
        } else {
            format!(
                "; {} held in unpublished jobs",
                money(&overall.unpublished_amount)
            )
        }
    ));
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job to cancel (one of yours).
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Send the cancel even if the job already finished.
    #[arg(long)]
    pub force: bool,

    /// Reason, sent as the deletion request's content.
    #[arg(
        long,
        default_value = "cancelled by the requester",
        value_name = "TEXT"
    )]
    pub reason: String,

    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: super::ReadArgs,
}

#[derive(Debug, Args)]
pub struct RepublishArgs {
    /// Journaled jobs to publish (again).
    #[arg(value_name = "JOB", required_unless_present = "all")]
    pub jobs: Vec<String>,

    /// Every journaled job that no relay has accepted yet.
    #[arg(long, conflicts_with = "jobs")]
    pub all: bool,

    /// Relays that must accept each job for exit 0 [default: config, else 1].
    #[arg(long, value_name = "N")]
    pub min_accept: Option<usize>,

    /// Print one JSON object per job on stdout.
    #[arg(long)]
    pub json: bool,

    /// Relay URL; repeat for several [default: each job's own relays, else the config's].
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Bound on the whole command, every job's publish included
    /// [default: config timeouts.publish, else 10s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only jobs created at or after: unix seconds (9+ digits), YYYY-MM-DD
    /// (UTC), or an age (90s, 24h, 7d; a short bare number is seconds ago).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
