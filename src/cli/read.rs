//! Read-side glue shared by `watch`, `status`, `show`, `logs`, `list` and
//! `workers` (and `ReadArgs` for other readers): where to read from, job
//! references from the command line or stdin, the reading client, and
//! loading named jobs synced with the journal (a workflow run named
//! instead of a job is followed through its job, [`jobctl::hive::follow`]).

use std::collections::HashMap;

use clap::Args;

use jobctl::config::Config;
use jobctl::error::{Error, Result};
use jobctl::hive::follow::{resolve_trackers, RunLink};
use jobctl::protocol::JobRef;
use jobctl::relays::{self, Reach};
use jobctl::state::JobTracker;
use jobctl::{follow, tracking};
use nostr_sdk::prelude::*;

use super::render::short_id;
use super::{read_stdin, relays_for, require_relays, runtime, Ctx};

/// Where to read from: relays and a time bound.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Relay URL; repeat for several. Replaces the configured list and
    /// $JOBCTL_RELAYS (relay hints of nevent references are still added).
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Bound on the whole command: every relay lookup, publish and mint
    /// call, e.g. 10s [default: config timeouts.query, else 10s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// Parse job references; `-` reads more from stdin (one per line).
pub(crate) fn job_refs(args: &[String]) -> Result<Vec<JobRef>> {
    let mut out: Vec<JobRef> = Vec::new();
    for a in args {
        let items: Vec<String> = if a == "-" {
            read_stdin("job ids")?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        } else {
            vec![a.clone()]
        };
        for it in items {
            let r = JobRef::parse(&it).map_err(Error::input)?;
            if !out.iter().any(|o| o.id == r.id) {
                out.push(r);
            }
        }
    }
    if out.is_empty() {
        return Err(Error::input("no job ids given (stdin was empty)"));
    }
    Ok(out)
}

/// Configured relays plus every relay hint from the references.
pub(crate) fn read_relays(
    cfg: &Config,
    flags: &[String],
    refs: &[JobRef],
) -> Result<Vec<RelayUrl>> {
    let mut urls = relays_for(cfg, flags)?;
    for r in refs {
        for u in &r.relays {
            if !urls.contains(u) {
                urls.push(u.clone());
            }
        }
    }
    require_relays(&urls)?;
    Ok(urls)
}

/// A reading client: it signs only to answer NIP-42 AUTH, with the key
/// when there is one.
pub(crate) async fn reader(
    ctx: &Ctx,
    cfg: &Config,
    urls: &[RelayUrl],
    persistent: bool,
) -> Result<Client> {
    let key = ctx.optional_key(cfg)?;
    Ok(relays::reader(key.as_ref().map(|k| &k.keys), urls, persistent).await)
}

/// Warn about the journal updates that could not be recorded.
pub(crate) fn warn_all(ctx: &Ctx, errors: Vec<Error>) {
    for e in errors {
        ctx.warn(&e.to_string());
    }
}

/// Jobs named on the command line, loaded from their relays and synced
/// with the journal.
pub(crate) struct Loaded {
    pub(crate) cfg: Config,
    pub(crate) urls: Vec<RelayUrl>,
    pub(crate) trackers: Vec<JobTracker>,
    pub(crate) reach: Reach,
    /// The workflow runs named instead of jobs, by their job's id.
    pub(crate) runs: HashMap<EventId, RunLink>,
}

/// Load jobs named on the command line, with their relays. Starts the
/// command's deadline; fails when no relay answered at all (timed out,
/// or unreachable), warns when some did not.
pub(crate) fn load(ctx: &Ctx, jobs: &[String], read: &ReadArgs) -> Result<Loaded> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(read.timeout.as_deref(), cfg.query_timeout)?;
    let refs = job_refs(jobs)?;
    let urls = read_relays(&cfg, &read.relays, &refs)?;
    let ids: Vec<EventId> = refs.iter().map(|r| r.id).collect();
    // The workers' own outbox relays (NIP-65), from the journal's cache.
    let mut journal = ctx.existing_journal()?;
    let urls = jobctl::outbox::read_relays(journal.as_ref(), cfg.outbox, &ids, urls);
    let (mut trackers, reach, runs) = runtime()?.block_on(async {
        let client = reader(ctx, &cfg, &urls, false).await?;
        let (mut t, reach) =
            follow::load_jobs_reach(&client, &urls, &ids, deadline.remaining()).await;
        // Ids that are no job may be workflow runs: follow their job.
        let runs = if reach.none_answered() {
            HashMap::new()
        } else {
            resolve_trackers(&client, &urls, &mut t, deadline.remaining()).await
        };
        relays::shutdown(&client).await;
        Ok::<_, Error>((t, reach, runs))
    })?;
    if reach.none_answered() {
        let what: Vec<String> = ids.iter().map(|id| short_id(&id.to_hex())).collect();
        let doing = format!("looking up job {}", what.join(", "));
        return Err(follow::reach_error(&reach, deadline.total(), &doing));
    }
    if !reach.complete() {
        ctx.warn(&reach.describe());
    }
    warn_all(ctx, tracking::sync(journal.as_mut(), &mut trackers));
    Ok(Loaded {
        cfg,
        urls,
        trackers,
        reach,
        runs,
    })
}

/// Load one job that must exist (on a relay or in the journal).
pub(crate) fn load_one(
    ctx: &Ctx,
    job: &str,
    read: &ReadArgs,
) -> Result<(Config, Vec<RelayUrl>, JobTracker, Option<RunLink>)> {
    let Loaded {
        cfg,
        urls,
        trackers,
        reach,
        mut runs,
    } = load(ctx, &[job.to_string()], read)?;
    let t = trackers
        .into_iter()
        .next()
        .ok_or_else(|| Error::input("no job given"))?;
    if let Some(run) = runs.get(&t.id).filter(|_| t.request.is_none()) {
        return Err(Error::Runtime(format!(
            "workflow run {} has no job (kind 5100) attached on {} relay(s)",
            run.run.id,
            urls.len()
        )));
    }
    if t.request.is_none() && !reach.complete() {
        return Err(follow::reach_error(
            &reach,
            ctx.deadline().total(),
            &format!("looking up job {}", t.id),
        ));
    }
    if t.request.is_none() {
        return Err(Error::Runtime(format!(
            "job {} not found on {} relay(s) or in the journal",
            t.id,
            urls.len()
        )));
    }
    let run = runs.remove(&t.id);
    Ok((cfg, urls, t, run))
}
