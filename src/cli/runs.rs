//! `jobctl runs --repo REPO`: a repository's Hive CI runs, newest first,
//! like Budabit's Pipelines tab and `gh run list`. Run ids on stdout (or
//! JSON), the table on stderr.

use clap::Args;
use jobctl::error::{Error, Result};
use jobctl::hive::{self, RepoRef, RunView, RunsQuery};
use jobctl::protocol::JobState;

use super::render;
use super::{relays_for, require_relays, runtime, to_json, Ctx};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The repository: naddr1..., nostr://npub.../[relay/]identifier, or
    /// 30617:<pubkey>:<identifier>.
    #[arg(long, value_name = "REPO")]
    pub repo: String,

    /// Only this workflow (its path, or just the file name, e.g. ci.yml).
    #[arg(long, value_name = "PATH")]
    pub workflow: Option<String>,

    /// Only runs of this branch.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,

    /// Only runs in this state (pending, queued, running, success, failed,
    /// cancelled, skipped, error, unknown); comma separated.
    #[arg(long, value_name = "STATE")]
    pub status: Option<String>,

    /// At most this many runs.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,

    /// Runs by anyone, not only the repository's owner and maintainers.
    #[arg(long)]
    pub all_authors: bool,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    /// Relay URL; repeat for several. Replaces the configured list (the
    /// repository's own relays are always added).
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Bound on the whole command, e.g. 10s [default: config timeouts.query].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// `--status a,b` as states.
fn parse_states(s: &str) -> Result<Vec<JobState>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| match JobState::parse(x) {
            JobState::Unknown if !x.eq_ignore_ascii_case("unknown") => Err(Error::input(format!(
                "--status: `{}` is not a run state",
                render::clip(x, 40)
            ))),
            st => Ok(st),
        })
        .collect()
}

pub fn run(ctx: &Ctx, a: RunsArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(a.timeout.as_deref(), cfg.query_timeout)?;
    let repo = RepoRef::parse(&a.repo)?;
    if a.limit == 0 {
        return Err(Error::input("--limit must be at least 1"));
    }
    let states = a.status.as_deref().map(parse_states).transpose()?;
    let urls = hive::repo::merge_relays(&relays_for(&cfg, &a.relays)?, &repo.relays);
    require_relays(&urls)?;
    let key = ctx.optional_key(&cfg)?;
    let q = RunsQuery {
        repo,
        all_authors: a.all_authors,
        workflow: a.workflow,
        branch: a.branch,
        states,
        limit: a.limit,
    };
    let page = runtime()?.block_on(hive::list_runs(
        key.as_ref().map(|k| &k.keys),
        &urls,
        &q,
        &deadline,
    ));
    if page.reach.none_answered() {
        return Err(jobctl::follow::reach_error(
            &page.reach,
            deadline.total(),
            "listing runs",
        ));
    }
    if !page.reach.complete() {
        render::print_warning(&page.reach.describe());
    }
    if page.announcement.is_none() && !a.all_authors {
        render::print_warning(&format!(
            "no announcement (kind 30617) of {} found: showing the owner's runs only",
            q.repo
        ));
    }
    if a.json {
        ctx.print(&to_json(&page.runs)?)?;
        return Ok(0);
    }
    ctx.say(table(
        &page.runs,
        ctx.now().as_secs(),
        render::stderr_color(),
    ));
    for r in &page.runs {
        ctx.print(&r.id)?;
    }
    Ok(0)
}

/// The runs table: run, workflow, branch, commit, triggered by, worker,
/// state, duration, age.
fn table(runs: &[RunView], now: u64, color: bool) -> String {
    if runs.is_empty() {
        return "no runs".into();
    }
    let mut t = render::table(
        &[
            "run", "workflow", "branch", "commit", "by", "worker", "state", "took", "age",
        ],
        color,
    );
    for r in runs {
        t.add_row(vec![
            comfy_table::Cell::new(render::short_id(&r.id)),
            comfy_table::Cell::new(render::clip(&render::one_line(&r.workflow), 48)),
            comfy_table::Cell::new(render::clip(&render::one_line(&r.branch), 24)),
            comfy_table::Cell::new(
                render::one_line(&r.commit)
                    .chars()
                    .take(7)
                    .collect::<String>(),
            ),
            comfy_table::Cell::new(render::short_npub(&r.triggered_by)),
            comfy_table::Cell::new(
                r.worker
                    .as_deref()
                    .map(render::short_npub)
                    .unwrap_or("-".into()),
            ),
            render::state_cell(r.state, false, color),
            comfy_table::Cell::new(r.duration.map(render::run_time).unwrap_or("-".into())),
            comfy_table::Cell::new(render::age(now, r.created_at)),
        ]);
    }
    t.to_string()
}
