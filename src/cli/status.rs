//! `jobctl status`: the one-shot state of one or many jobs, from the
//! relays and the journal (a table on stderr, `id state` lines on stdout).

use std::collections::HashMap;

use clap::Args;

use jobctl::error::{exit, Result};
use jobctl::relays::Reach;
use jobctl::state::JobView;
use jobctl::{follow, tracking};

use super::read::{load, ReadArgs};
use super::render;
use super::render_jobs::jobs_table;
use super::{to_json, Ctx};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Job ids (hex, note1, nevent1); `-` reads them from stdin.
    #[arg(required = true, value_name = "JOB")]
    pub jobs: Vec<String>,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

pub fn run(ctx: &Ctx, a: StatusArgs) -> Result<i32> {
    let loaded = load(ctx, &a.jobs, &a.read)?;
    let views: Vec<JobView> = loaded.trackers.iter().map(|t| t.view(ctx.now())).collect();
    if a.json {
        ctx.print(&to_json(&views)?)?;
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
