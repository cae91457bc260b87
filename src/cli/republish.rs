//! `republish`: publish journaled jobs that never reached a relay (or
//! not enough). Which jobs, and where to, is [`jobctl::republish`]'s; a
//! job whose payment was reclaimed never goes out again.

use clap::Args;

use crate::cli::render::{self, short_id};
use jobctl::config;
use jobctl::deadline::Deadline;
use jobctl::dispatch::{self, DispatchReport};
use jobctl::error::{exit, Error, Result};
use jobctl::journal::JobRecord;
use jobctl::republish;
use nostr_sdk::prelude::*;

use super::{min_accept_for, relays_for, runtime, to_json, Ctx};

pub fn run(ctx: &Ctx, a: RepublishArgs) -> Result<i32> {
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
    let records = republish::select(&journal, a.all, &a.jobs)?;
    if records.is_empty() {
        ctx.say("nothing to republish: every journaled job reached a relay");
        return Ok(exit::OK);
    }
    let key = ctx.key(&cfg)?;
    let rt = runtime()?;
    // `--relay` flags replace each job's own relays.
    let flags: &[RelayUrl] = if a.relays.is_empty() { &[] } else { &flags };
    let mut jobs = Vec::with_capacity(records.len());
    for rec in &records {
        jobs.push(dispatch::Again {
            event: rec.signed_event()?,
            payment: dispatch::journaled_payment(rec),
            urls: republish::relays_for(rec, flags, &cfg.relays)?,
        });
    }
    // Every job at once over one pool, within the command's one deadline.
    let reports = rt.block_on(dispatch::republish_many(
        &mut journal,
        &key.keys,
        jobs,
        deadline.remaining(),
        min_accept,
    ))?;
    let mut failures = 0;
    let mut why = None;
    for (rec, report) in records.iter().zip(reports) {
        if !report.ok() {
            failures += 1;
            why = why.or_else(|| first_failure(&report));
        }
        print_one(ctx, rec, &report, a.json)?;
    }
    if failures > 0 {
        ctx.error(&shortfall(failures, min_accept, &deadline, why));
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

/// One job's outcome: JSON, or a line and the relay table; its id on stdout.
fn print_one(ctx: &Ctx, rec: &JobRecord, report: &DispatchReport, json: bool) -> Result<()> {
    if json {
        return ctx.print(&to_json(report)?);
    }
    ctx.say(format!(
        "job {}{}: accepted by {}/{} relays",
        short_id(&rec.id),
        rec.amount
            .map(|amt| format!(" ({amt} {})", rec.unit.as_deref().unwrap_or("sat")))
            .unwrap_or_default(),
        report.accepted,
        report.relays.len()
    ));
    ctx.say(render::relay_table(&report.relays, render::stderr_color()));
    ctx.print(&report.id)
}

/// The first relay of `report` that did not accept, with its reason.
fn first_failure(report: &DispatchReport) -> Option<String> {
    report
        .relays
        .iter()
        .find(|o| o.status != jobctl::relays::RelayStatus::Accepted)
        .map(|o| format!("{} {}: {}", o.url, o.status, render::sanitize(&o.message)))
}

/// `N job(s) still below M relay(s)`, saying so when time ran out, else
/// the first relay's reason (`why`).
fn shortfall(
    failures: usize,
    min_accept: usize,
    deadline: &Deadline,
    why: Option<String>,
) -> String {
    let reason = if deadline.expired() {
        format!(
            " (timed out after {})",
            config::format_duration(deadline.total())
        )
    } else {
        why.map(|w| format!(" (first: {w})")).unwrap_or_default()
    };
    format!("{failures} job(s) still below {min_accept} relay(s){reason}")
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
