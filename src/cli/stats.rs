//! `stats`: jobs by status, success rate, durations and money, from the
//! journal (computed by [`jobctl::stats`]), as a table or JSON.

use clap::Args;
use std::collections::BTreeMap;

use crate::cli::render::{self, run_time, short_npub};
use jobctl::config;
use jobctl::error::{exit, Error, Result};
use jobctl::stats::{self, Stats};

use super::Ctx;

pub fn run(ctx: &Ctx, a: StatsArgs) -> Result<i32> {
    let since = a
        .since
        .as_deref()
        .map(|s| {
            config::parse_time(s, ctx.now()).map_err(|e| Error::input(format!("--since: {e}")))
        })
        .transpose()?
        .map(|t| t.as_secs())
        .unwrap_or(0);
    let report = stats::from_journal(ctx.existing_journal()?.as_ref(), since)?;
    if a.json {
        // Through a JSON value, as always: its maps order the keys.
        let v = serde_json::to_value(&report)
            .map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))?;
        ctx.print(&v.to_string())?;
        return Ok(exit::OK);
    }
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
        render::stderr_color(),
    );
    for (w, s) in &report.workers {
        t.add_row(row(short_npub(w), s));
    }
    t.add_row(row("all".into(), &report.overall));
    ctx.say(t.to_string());
    ctx.say(summary(&report.overall));
    Ok(exit::OK)
}

/// One table row.
fn row(name: String, s: &Stats) -> Vec<String> {
    let c = |k: &str| s.count(k);
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
}

/// `N job(s): state n, ...; AMOUNT held in unpublished jobs`.
fn summary(overall: &Stats) -> String {
    let states: Vec<String> = overall
        .by_status
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    format!(
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
    )
}

/// `3 sat, 2 msat`, or `0`.
fn money(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(u, a)| format!("{a} {u}"))
        .collect::<Vec<_>>()
        .join(", ")
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
