//! `jobctl list`: your jobs on the relays merged with the journal (or the
//! journal alone with --local), newest first, filtered by state and
//! worker; the library decides the page, this file renders it.

use clap::Args;

use jobctl::config::{self, Config};
use jobctl::error::{exit, Error, Result};
use jobctl::follow::{self, ListQuery};
use jobctl::journal::Journal;
use jobctl::listing::{self, JobFilter, JobPage, StateFilter};
use jobctl::relays;
use jobctl::tracking;
use nostr_sdk::prelude::*;

use super::read::{read_relays, warn_all, ReadArgs};
use super::render;
use super::render_jobs::jobs_table;
use super::{runtime, to_json, Ctx};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The journal alone: offline and instant.
    #[arg(long)]
    pub local: bool,

    /// Only jobs in this state (unpublished, pending, queued, running,
    /// success, failed, cancelled, error, unknown, stale); comma separated.
    #[arg(long, value_name = "STATE")]
    pub status: Option<String>,

    /// Only jobs for this worker (npub or hex).
    #[arg(long, value_name = "PUBKEY")]
    pub worker: Option<String>,

    /// Jobs of this requester [default: your key].
    #[arg(long, value_name = "PUBKEY")]
    pub author: Option<String>,

    /// Only jobs created at or after: unix seconds (9+ digits), YYYY-MM-DD
    /// (UTC), or an age (90s, 24h, 7d; a short bare number is seconds ago).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only jobs created at or before (same forms). For the next page, pass
    /// the value printed under the table (jobs sharing the boundary second
    /// with the last row may be skipped).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// At most this many jobs, fetched before --status and --worker filter them.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

/// The resolved flags of a `list`.
struct Wanted {
    since: Option<u64>,
    until: Option<u64>,
    limit: usize,
    filter: JobFilter,
}

impl Wanted {
    fn resolve(a: &ListArgs, now: Timestamp) -> Result<Wanted> {
        let parse_t = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| {
                    config::parse_time(s, now).map_err(|e| Error::input(format!("{flag}: {e}")))
                })
                .transpose()
        };
        let since = parse_t("--since", &a.since)?;
        let until = parse_t("--until", &a.until)?;
        if a.limit == 0 {
            return Err(Error::input("--limit must be at least 1"));
        }
        let states = a
            .status
            .as_deref()
            .map(|s| StateFilter::parse(s).map_err(|e| Error::input(format!("--status: {e}"))))
            .transpose()?;
        let worker = parse_key("--worker", a.worker.as_deref())?;
        Ok(Wanted {
            since: since.map(|t| t.as_secs()),
            until: until.map(|t| t.as_secs()),
            limit: a.limit,
            filter: JobFilter { states, worker },
        })
    }
}

fn parse_key(flag: &str, v: Option<&str>) -> Result<Option<PublicKey>> {
    v.map(|w| config::parse_pubkey(w).map_err(|e| Error::input(format!("{flag}: {e}"))))
        .transpose()
}

pub fn run(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    ctx.start_deadline(a.read.timeout.as_deref(), cfg.query_timeout)?;
    let w = Wanted::resolve(&a, ctx.now())?;
    let journal = ctx.existing_journal()?;
    let mut page = if a.local {
        match &journal {
            Some(j) => JobPage::from_journal(j, w.since, w.until, w.limit, ctx.now())?,
            None => JobPage::default(),
        }
    } else {
        remote(ctx, &cfg, &a, &w, journal)?
    };
    page.filter(&w.filter);
    if a.json {
        ctx.print(&to_json(&page.views)?)?;
        return Ok(exit::OK);
    }
    let color = render::stderr_color();
    ctx.say(jobs_table(
        &page.views,
        &page.names,
        color,
        ctx.now().as_secs(),
    ));
    for v in &page.views {
        ctx.print(&v.id)?;
    }
    if let Some(next) = page.next_until() {
        ctx.say(format!(
            "more jobs may be older: next page with --until {next}"
        ));
    }
    Ok(exit::OK)
}

/// A page from the relays, recorded in the journal and, for your own
/// jobs, merged with it.
fn remote(
    ctx: &Ctx,
    cfg: &Config,
    a: &ListArgs,
    w: &Wanted,
    mut journal: Option<Journal>,
) -> Result<JobPage> {
    let deadline = ctx.deadline();
    let urls = read_relays(cfg, &a.read.relays, &[])?;
    let key = ctx.optional_key(cfg)?;
    let mine = key.as_ref().map(|k| k.keys.public_key());
    let author = match parse_key("--author", a.author.as_deref())? {
        Some(a) => a,
        None => mine.ok_or_else(|| {
            Error::input(
                "no key to list jobs for: pass --author PUBKEY, use --local, or set up a key (`jobctl key generate`)",
            )
        })?,
    };
    let q = ListQuery {
        author: Some(author),
        since: w.since.map(Timestamp::from),
        until: w.until.map(Timestamp::from),
        limit: w.limit,
    };
    let fetched = runtime()?.block_on(async {
        let client = relays::reader(key.as_ref().map(|k| &k.keys), &urls, false).await;
        listing::fetch(&client, &urls, &q, &deadline).await
    });
    if fetched.reach.none_answered() {
        return Err(follow::reach_error(
            &fetched.reach,
            deadline.total(),
            "listing jobs",
        ));
    }
    if !fetched.reach.complete() {
        ctx.warn(&fetched.reach.describe());
    }
    warn_all(
        ctx,
        tracking::record_known(journal.as_mut(), &fetched.trackers),
    );
    let mut page = JobPage::from_trackers(&fetched.trackers, w.limit, ctx.now());
    page.names = fetched.names;
    if let (Some(j), true) = (&journal, Some(author) == mine) {
        page.merge_journal(j, w.since, w.until, w.limit, ctx.now())?;
    }
    Ok(page)
}
