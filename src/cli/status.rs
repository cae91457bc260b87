//! `jobctl status`: the one-shot state of one or many jobs, from the
//! relays and the journal (a table on stderr, `id state` lines on stdout).

use std::collections::HashMap;

use clap::Args;

use jobctl::error::{exit, Result};
use jobctl::hive::follow::RunSummary;
use jobctl::relays::Reach;
use jobctl::state::JobView;
use jobctl::{follow, tracking};

use super::read::{load, ReadArgs};
use super::render;
use super::render_jobs::jobs_table;
use super::{to_json, Ctx};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Job ids (hex, note1, nevent1); `-` reads them from stdin. A workflow
    /// run's id (kind 5401) shows the run's state: its result (5402), else
    /// its job's.
    #[arg(required = true, value_name = "JOB|RUN")]
    pub jobs: Vec<String>,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

pub fn run(ctx: &Ctx, a: StatusArgs) -> Result<i32> {
    let loaded = load(ctx, &a.jobs, &a.read)?;
    let mut views: Vec<JobView> = loaded.trackers.iter().map(|t| t.view(ctx.now())).collect();
    let runs: Vec<Option<RunSummary>> = loaded
        .trackers
        .iter()
        .map(|t| loaded.runs.get(&t.id).map(|r| r.summary(Some(t))))
        .collect();
    for (v, r) in views.iter_mut().zip(&runs) {
        if let Some(r) = r {
            as_run(v, r);
        }
    }
    if a.json {
        let text = if runs.iter().all(Option::is_none) {
            to_json(&views)?
        } else {
            to_json(&with_runs(&views, &runs)?)?
        };
        ctx.print(&text)?;
    } else {
        render_views(ctx, &views, render::stderr_color())?;
    }
    let missing = tracking::not_found(&loaded.trackers);
    if missing.is_empty() {
        return Ok(exit::OK);
    }
    ctx.error(&not_found_message(ctx, &missing, &loaded.reach));
    Ok(exit::FAILURE)
}

/// A run's row: its id and its state (5402 > 5101 > 30100), the 5402's
/// exit code and duration.
fn as_run(v: &mut JobView, r: &RunSummary) {
    v.id = r.id.clone();
    v.found = true;
    v.state = r.state;
    if r.exit_code.is_some() {
        v.exit_code = r.exit_code;
    }
    if r.duration.is_some() {
        v.duration = r.duration;
    }
}

/// The JSON array: a run's entry gains a `run` object (job id, workflow,
/// source, log_url, ...); a job's is as before.
fn with_runs(views: &[JobView], runs: &[Option<RunSummary>]) -> Result<Vec<serde_json::Value>> {
    let enc = |e: serde_json::Error| jobctl::Error::Runtime(format!("cannot encode JSON: {e}"));
    views
        .iter()
        .zip(runs)
        .map(|(v, r)| {
            let mut value = serde_json::to_value(v).map_err(enc)?;
            if let (Some(r), Some(o)) = (r, value.as_object_mut()) {
                o.insert("run".into(), serde_json::to_value(r).map_err(enc)?);
            }
            Ok(value)
        })
        .collect()
}

/// The table on stderr, `id state` (or `id not-found`) lines on stdout.
fn render_views(ctx: &Ctx, views: &[JobView], color: bool) -> Result<()> {
    ctx.say(jobs_table(
        views,
        &HashMap::new(),
        color,
        ctx.now().as_secs(),
    ));
    for v in views {
        let state = if v.found {
            v.state.as_str()
        } else {
            "not-found"
        };
        ctx.print(&format!("{} {state}", v.id))?;
    }
    Ok(())
}

/// Which jobs were not found, and whether that is for sure.
fn not_found_message(ctx: &Ctx, missing: &[String], reach: &Reach) -> String {
    if reach.complete() {
        return format!(
            "not found on any relay or in the journal: {}",
            missing.join(", ")
        );
    }
    format!(
        "not found on the relays that answered or in the journal: {} ({})",
        missing.join(", "),
        follow::reach_error(reach, ctx.deadline().total(), "looking them up")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::render_jobs::tests::view;
    use jobctl::protocol::JobState;
    use jobctl::settings::{GlobalFlags, Settings};

    #[test]
    fn status_prints_id_state_lines_and_a_table_by_the_fixed_clock() {
        let settings = Settings::resolve(GlobalFlags::default());
        let (ctx, out, err) = Ctx::for_test(settings, false, 10_000);
        let mut gone = view(&"0".repeat(64), 0, JobState::Pending);
        gone.found = false;
        gone.created_at = None;
        gone.cmd = None;
        let views = vec![view(&"a".repeat(64), 9_940, JobState::Running), gone];
        render_views(&ctx, &views, false).unwrap();
        assert_eq!(
            out.text(),
            format!("{} running\n{} not-found\n", "a".repeat(64), "0".repeat(64))
        );
        let table = err.text();
        assert!(
            table.contains("1m") && table.contains("(not found)"),
            "{table}"
        );
        assert!(!table.contains('\x1b'));
    }
}
