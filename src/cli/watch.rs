//! `jobctl watch`: follow jobs live until they finish (like `gh run
//! watch`), recording what it sees in the journal; lines or NDJSON.

use std::collections::HashMap;

use clap::Args;
use serde_json::json;

use jobctl::config;
use jobctl::deadline::Deadline;
use jobctl::error::{exit, Error, Result};
use jobctl::follow::{self, WatchEnd};
use jobctl::hive::follow::{fetch_result, resolve_trackers, RunLink, RunSummary};
use jobctl::payment::PaymentToken;
use jobctl::protocol::JobState;
use jobctl::relays::{self, Reach};
use jobctl::state::{JobTracker, Update};
use jobctl::tracking;
use nostr_sdk::prelude::*;

use super::read::{job_refs, read_relays, reader};
use super::render::{self, clock, short_id};
use super::render_jobs::{summary, update_line};
use super::{runtime, Ctx};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Job ids (hex, note1, nevent1); `-` reads them from stdin, one per
    /// line. A workflow run's id (kind 5401) follows its job; the run's
    /// result (5402), when there is one, decides --exit-status.
    #[arg(required = true, value_name = "JOB|RUN")]
    pub jobs: Vec<String>,

    /// Exit 0 when every job (or run) succeeded, 1 when one failed, errored or was cancelled.
    #[arg(long)]
    pub exit_status: bool,

    /// Print NDJSON on stdout: one object per update.
    #[arg(long)]
    pub json: bool,

    /// Relay URL; repeat for several. Replaces the configured list and
    /// $JOBCTL_RELAYS (relay hints of nevent references are still added).
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Bound on the whole command, loading the jobs included: give up after
    /// this long and exit 124 [default: wait forever; loading the jobs is
    /// then bounded by config timeouts.query].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

pub fn run(ctx: &Ctx, a: WatchArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let refs = job_refs(&a.jobs)?;
    let urls = read_relays(&cfg, &a.relays, &refs)?;
    // One deadline for the whole watch, loading included; without
    // --timeout only the loading is bounded (by timeouts.query).
    let overall = match a.timeout.as_deref() {
        Some(t) => Some(ctx.start_deadline(Some(t), cfg.query_timeout)?),
        None => None,
    };
    let ids: Vec<EventId> = refs.iter().map(|r| r.id).collect();
    let journal = ctx.existing_journal()?;
    let urls = jobctl::outbox::read_relays(journal.as_ref(), cfg.outbox, &ids, urls);
    runtime()?.block_on(async {
        let load = overall.unwrap_or_else(|| Deadline::after(cfg.query_timeout));
        let client = reader(ctx, &cfg, &urls, true).await?;
        // The lookup connects each relay itself: a silent relay costs the
        // deadline once, not once to connect and again to read.
        let (mut trackers, reach) = follow::load_jobs_settling(
            &client,
            &urls,
            &ids,
            load.remaining(),
            follow::SETTLE_GRACE,
        )
        .await;
        // Ids that are no job may be workflow runs: follow their job.
        let runs = if reach.none_answered() {
            HashMap::new()
        } else {
            resolve_trackers(&client, &urls, &mut trackers, load.remaining()).await
        };
        tracking::fill_from_journal(journal.as_ref(), &mut trackers);
        if let Some(code) = missing(ctx, &trackers, &reach, &urls, &load, overall)? {
            relays::shutdown(&client).await;
            return Ok(code);
        }
        if !reach.complete() {
            ctx.warn(&reach.describe());
        }
        let w = Watcher {
            ctx,
            a: &a,
            journal,
        };
        for (job, r) in runs.iter().filter(|_| !a.json) {
            ctx.say(format!(
                "workflow run {} ({}): following its job {}",
                short_id(&r.run.id.to_hex()),
                render::sanitize(&r.run.run.workflow),
                short_id(&job.to_hex())
            ));
        }
        let end = w.follow(&client, &mut trackers, overall).await;
        let runs = run_results(&client, &urls, runs, overall).await;
        relays::shutdown(&client).await;
        finish(ctx, &a, &trackers, &runs, end, overall)
    })
}

/// When a job was found nowhere: the error, or exit 124 when --timeout
/// passed before the jobs were even found.
fn missing(
    ctx: &Ctx,
    trackers: &[JobTracker],
    reach: &Reach,
    urls: &[RelayUrl],
    load: &Deadline,
    overall: Option<Deadline>,
) -> Result<Option<i32>> {
    let missing = tracking::not_found(trackers);
    if missing.is_empty() {
        return Ok(None);
    }
    if reach.complete() {
        return Err(Error::Runtime(format!(
            "job {} not found on {} relay(s)",
            missing.join(", "),
            urls.len()
        )));
    }
    let doing = format!("looking up job {}", missing.join(", "));
    let e = follow::reach_error(reach, load.total(), &doing);
    if overall.is_some_and(|d| d.expired()) {
        ctx.error(&e.to_string());
        return Ok(Some(124));
    }
    Err(e)
}

/// Once the jobs ended: each run's workflow result (5402), looked up
/// again when none was known (the runner publishes it before its job
/// ends), within what is left of the watch (at most 5 s).
async fn run_results(
    client: &Client,
    urls: &[RelayUrl],
    mut runs: HashMap<EventId, RunLink>,
    overall: Option<Deadline>,
) -> HashMap<EventId, RunLink> {
    let bound = std::time::Duration::from_secs(5);
    for link in runs.values_mut().filter(|l| l.result.is_none()) {
        let left = overall.map(|d| d.remaining().min(bound)).unwrap_or(bound);
        if left.is_zero() {
            break;
        }
        link.result = fetch_result(client, urls, &link.run, left).await;
    }
    runs
}

/// A run's final line (text) or object (`--json`, `"type": "run"`).
fn show_run(ctx: &Ctx, a: &WatchArgs, r: &RunSummary) -> Result<()> {
    if a.json {
        let mut v = serde_json::to_value(r)
            .map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "run".into());
        }
        return ctx.print(&v.to_string());
    }
    let mut line = format!(
        "workflow run {} ({}): {}",
        short_id(&r.id),
        render::sanitize(&r.workflow),
        r.state
    );
    if let Some(c) = r.exit_code {
        line.push_str(&format!(", exit {c}"));
    }
    if let Some(d) = r.duration {
        line.push_str(&format!(", {d}s"));
    }
    if let Some(u) = &r.log_url {
        line.push_str(&format!(", log {}", render::sanitize(u)));
    }
    ctx.say(line);
    Ok(())
}

/// How the watch ended, as an exit code (and a summary per job; a run's
/// state is its 5402's when there is one).
fn finish(
    ctx: &Ctx,
    a: &WatchArgs,
    trackers: &[JobTracker],
    runs: &HashMap<EventId, RunLink>,
    end: WatchEnd,
    overall: Option<Deadline>,
) -> Result<i32> {
    if end == WatchEnd::Closed {
        return Err(Error::Relay(
            "lost the connection to every relay before the job finished".into(),
        ));
    }
    if end == WatchEnd::TimedOut {
        let unfinished: Vec<String> = trackers
            .iter()
            .filter(|t| !t.state().is_terminal())
            .map(|t| format!("{} ({})", short_id(&t.id.to_hex()), t.state()))
            .collect();
        ctx.error(&format!(
            "timed out after {} waiting for {}",
            config::format_duration(overall.map(|d| d.total()).unwrap_or_default()),
            unfinished.join(", ")
        ));
        return Ok(124);
    }
    if !a.json {
        let color = render::stderr_color();
        for t in trackers {
            ctx.say(summary(&t.view(ctx.now()), color));
        }
    }
    let mut all_ok = true;
    for t in trackers {
        let state = match runs.get(&t.id) {
            Some(r) => {
                let summary = r.summary(Some(t));
                show_run(ctx, a, &summary)?;
                summary.state
            }
            None => t.state(),
        };
        all_ok &= state == JobState::Success;
    }
    Ok(if a.exit_status && !all_ok {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// What a watch shows and records as updates arrive.
struct Watcher<'a> {
    ctx: &'a Ctx,
    a: &'a WatchArgs,
    journal: Option<jobctl::journal::Journal>,
}

impl Watcher<'_> {
    /// Replay what is known, then follow live until the end.
    async fn follow(
        mut self,
        client: &Client,
        trackers: &mut [JobTracker],
        overall: Option<Deadline>,
    ) -> WatchEnd {
        let (ctx, json) = (self.ctx, self.a.json);
        let multi = trackers.len() > 1;
        let spinner = Progress::new(ctx, json);
        let mut emit = |t: &JobTracker, u: &Update| {
            if let Some(j) = self.journal.as_mut() {
                warn_on(self.ctx, tracking::record_update(j, t, u));
            }
            if json {
                let _ = ctx.print(&update_json(t, u).to_string());
            } else if !ctx.quiet {
                spinner.println(update_line(t, u, multi));
            }
            spinner.set_message(format!("{} {}", short_id(&t.id.to_hex()), t.state()));
        };
        // What is already known, in order, before live updates.
        for t in trackers.iter() {
            for u in t.known_updates() {
                emit(t, &u);
            }
        }
        let waiting = !json
            && !ctx.quiet
            && trackers
                .iter()
                .all(|t| t.latest_status().is_none() && t.result().is_none());
        let names: Vec<String> = trackers.iter().map(|t| short_id(&t.id.to_hex())).collect();
        let on_ready = || {
            if waiting {
                spinner.println(format!(
                    "{}  pending    watching {}, waiting for the worker…",
                    clock(ctx.now().as_secs()),
                    names.join(", ")
                ));
            }
            tracing::info!("watching {}", names.join(", "));
        };
        let deadline = overall.map(|d| d.instant());
        let end = follow::watch(client, trackers, deadline, on_ready, &mut emit).await;
        spinner.finish_and_clear();
        end
    }
}

/// Warn when recording in the journal failed.
fn warn_on(ctx: &Ctx, r: Result<bool>) {
    if let Err(e) = r {
        ctx.warn(&e.to_string());
    }
}

fn update_json(t: &JobTracker, u: &Update) -> serde_json::Value {
    match u {
        Update::Status(s) => json!({
            "job": t.id.to_hex(), "type": "status", "state": s.state, "status": s.raw,
            "message": s.message, "at": s.at.as_secs(), "worker": s.author.to_hex(),
            "queue_position": s.queue_position,
            "reason": s.reason.as_ref().filter(|_| s.state != JobState::Success),
        }),
        Update::Result(r) => json!({
            "job": t.id.to_hex(), "type": "result", "state": r.state(), "success": r.success,
            "exit_code": r.exit_code, "duration": r.duration, "stdout": r.stdout,
            "stderr": r.stderr, "at": r.at.as_secs(), "worker": r.author.to_hex(),
            "error": r.error, "reason": r.error.as_ref().filter(|_| !r.success),
            "change": r.change.as_deref().and_then(|c| PaymentToken::parse(c).ok()).map(|c| c.info().clone()),
        }),
    }
}

/// A spinner on a terminal; plain stderr lines otherwise.
struct Progress<'a> {
    ctx: &'a Ctx,
    bar: Option<indicatif::ProgressBar>,
}

impl<'a> Progress<'a> {
    fn new(ctx: &'a Ctx, json: bool) -> Self {
        let bar = (!json && !ctx.quiet && render::stderr_is_tty()).then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.enable_steady_tick(std::time::Duration::from_millis(100));
            pb
        });
        Progress { ctx, bar }
    }

    fn println(&self, line: String) {
        match &self.bar {
            Some(pb) => pb.println(line),
            None => self.ctx.say(line),
        }
    }

    fn set_message(&self, msg: String) {
        if let Some(pb) = &self.bar {
            pb.set_message(msg);
        }
    }

    fn finish_and_clear(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}
