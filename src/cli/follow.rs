//! `watch`, `status`, `show`, `logs`, `list`, `workers`: read the worker's
//! side of the protocol and print it (tables on stderr, data on stdout).

use clap::Args;
use std::collections::HashMap;

use crate::cli::render::{
    self, age, clip, clock, run_time, sanitize, short_id, short_npub, state_cell,
};
use comfy_table::Cell;
use jobctl::config::{self, Config};
use jobctl::deadline::Deadline;
use jobctl::error::{exit, Error, Result};
use jobctl::follow::{self, ListQuery, WatchEnd};
use jobctl::journal::{JobRecord, Journal};
use jobctl::keys::npub;
use jobctl::payment::{redact_str, PaymentToken};
use jobctl::protocol::{JobRef, JobState, WorkerAd};
use jobctl::relays::Reach;
use jobctl::state::{JobTracker, JobView, Update};
use jobctl::{logs as joblogs, relays};
use nostr_sdk::prelude::*;
use serde_json::json;

use super::{read_stdin, relays_for, require_relays, runtime, to_json, Ctx};

/// Parse job references; `-` reads more from stdin (one per line).
fn job_refs(args: &[String]) -> Result<Vec<JobRef>> {
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
fn read_relays(cfg: &Config, flags: &[String], refs: &[JobRef]) -> Result<Vec<RelayUrl>> {
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

async fn reader(ctx: &Ctx, cfg: &Config, urls: &[RelayUrl], persistent: bool) -> Result<Client> {
    let key = ctx.optional_key(cfg)?;
    Ok(relays::reader(key.as_ref().map(|k| &k.keys), urls, persistent).await)
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// Requests the relays no longer have (deleted after a cancel, or never
/// published) come from the journal.
fn fill_from_journal(journal: Option<&Journal>, trackers: &mut [JobTracker]) {
    let Some(j) = journal else { return };
    for t in trackers.iter_mut().filter(|t| t.request.is_none()) {
        if let Ok(Some(rec)) = j.get(&t.id) {
            if let Ok(ev) = rec.signed_event() {
                t.ingest(&ev);
                t.unpublished = !rec.published;
            }
        }
    }
}

/// Record one observed update of a journaled job in its timeline.
fn record_update(journal: Option<&mut Journal>, t: &JobTracker, u: &Update) {
    let Some(j) = journal else { return };
    let res = match u {
        Update::Status(s) => j.record_state(
            &t.id,
            s.state,
            &match s.reason.as_deref().filter(|_| s.state != JobState::Success) {
                Some(r) if s.message.trim().is_empty() => format!("reason: {}", reason_text(r)),
                Some(r) => format!("{} (reason: {})", s.message, reason_text(r)),
                None => s.message.clone(),
            },
            s.at.as_secs(),
            None,
            None,
            None,
        ),
        Update::Result(r) => {
            let change = r
                .change
                .as_deref()
                .map(|c| (c, PaymentToken::parse(c).ok().map(|p| p.info().amount)));
            j.record_state(
                &t.id,
                r.state(),
                &format!(
                    "result: exit {}{}",
                    r.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "?".into()),
                    r.error
                        .as_deref()
                        .filter(|_| !r.success)
                        .map(|e| format!(": {}", reason_text(e)))
                        .unwrap_or_default()
                ),
                r.at.as_secs(),
                r.exit_code,
                r.duration,
                change,
            )
        }
    };
    if let Err(e) = res {
        render::print_warning(&e.to_string());
    }
}

/// Record everything known about journaled jobs, oldest first.
fn record_in_journal(mut journal: Option<&mut Journal>, trackers: &[JobTracker]) {
    for t in trackers.iter().filter(|t| t.request.is_some()) {
        for s in t.timeline() {
            record_update(journal.as_deref_mut(), t, &Update::Status(s.clone()));
        }
        if let Some(r) = t.result() {
            record_update(journal.as_deref_mut(), t, &Update::Result(r.clone()));
        }
    }
}

/// A journaled job as a table row.
fn view_from_record(r: &JobRecord, now: Timestamp) -> JobView {
    let state = r.state;
    JobView {
        id: r.id.clone(),
        found: true,
        author: Some(r.author.clone()),
        created_at: Some(r.created_at),
        worker: Some(r.worker.clone()),
        cmd: Some(r.cmd.clone()),
        args: r.args.clone(),
        state,
        reason: None,
        queue_position: None,
        stale: state == JobState::Pending
            && now.as_secs().saturating_sub(r.created_at) > jobctl::protocol::STALE_AFTER_SECS,
        message: String::new(),
        updated_at: Some(r.updated_at),
        exit_code: r.exit_code,
        duration: r.duration,
        stdout: None,
        stderr: None,
        change: r
            .change_token
            .as_deref()
            .and_then(|c| PaymentToken::parse(c).ok())
            .map(|c| c.info().clone()),
        amount: r.amount,
        unit: r.unit.clone(),
        mint: r.mint.clone(),
    }
}

fn not_found(trackers: &[JobTracker]) -> Vec<String> {
    trackers
        .iter()
        .filter(|t| t.request.is_none())
        .map(|t| t.id.to_hex())
        .collect()
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

fn update_line(t: &JobTracker, u: &Update, multi: bool) -> String {
    let prefix = if multi {
        format!("{}  ", short_id(&t.id.to_hex()))
    } else {
        String::new()
    };
    match u {
        Update::Status(s) => status_line(s, &prefix),
        Update::Result(r) => format!(
            "{}  {prefix}{:<10} exit {}{}{}",
            clock(r.at.as_secs()),
            r.state().as_str(),
            r.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            r.duration
                .map(|d| format!(" in {}", run_time(d)))
                .unwrap_or_default(),
            r.error
                .as_deref()
                .filter(|_| !r.success)
                .map(|e| format!(" · reason: {}", reason_text(e)))
                .unwrap_or_default()
        ),
    }
}

/// A worker's reason, on one line and clipped.
fn reason_text(r: &str) -> String {
    clip(&render::one_line(r), 200)
}

/// One status as a line: time, state, queue position, reason, message.
fn status_line(s: &jobctl::protocol::StatusUpdate, prefix: &str) -> String {
    let mut extra = String::new();
    if let Some(q) = s.queue_position {
        extra.push_str(&format!("#{q} in queue "));
    }
    if let Some(r) = s.reason.as_deref().filter(|_| s.state != JobState::Success) {
        extra.push_str(&format!("reason: {} ", reason_text(r)));
    }
    if s.state == JobState::Unknown && !s.raw.is_empty() {
        extra.push_str(&format!("(`{}`) ", render::one_line(&clip(&s.raw, 40))));
    }
    format!(
        "{}  {prefix}{:<10} {extra}{}",
        clock(s.at.as_secs()),
        s.state.as_str(),
        render::one_line(&s.message)
    )
    .trim_end()
    .to_string()
}

/// A result's stdout/stderr for a summary: the URL, or a note that the
/// worker sent the text inline.
fn output_ref(v: &str) -> String {
    if jobctl::protocol::is_url(v) {
        sanitize(v)
    } else {
        format!("inline, {} bytes (print it with `jobctl logs`)", v.len())
    }
}

fn summary(t: &JobTracker, color: bool) -> String {
    let v = t.view(now());
    let mark = match v.state {
        JobState::Success => render::paint("✓", color, "32"),
        _ => render::paint("✗", color, "31"),
    };
    let mut s = format!(
        "{mark} job {} {} · exit {} · {}",
        short_id(&v.id),
        v.state,
        v.exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into()),
        v.duration
            .map(run_time)
            .unwrap_or_else(|| "duration unknown".into()),
    );
    if let Some(r) = &v.reason {
        s.push_str(&format!("\n  reason: {}", reason_text(r)));
    }
    if let Some(u) = &v.stdout {
        s.push_str(&format!("\n  stdout: {}", output_ref(u)));
    }
    if let Some(u) = &v.stderr {
        s.push_str(&format!("\n  stderr: {}", output_ref(u)));
    }
    match &v.change {
        Some(c) => s.push_str(&format!(
            "\n  change: {} {} returned from {}",
            c.amount,
            sanitize(&c.unit),
            sanitize(&c.mint)
        )),
        None if t.result().is_some_and(|r| r.change.is_some()) => {
            s.push_str("\n  change: returned (undecodable token)")
        }
        None => s.push_str("\n  change: none returned"),
    }
    s
}

pub fn watch(ctx: &Ctx, a: WatchArgs) -> Result<i32> {
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
    let color = render::stderr_color();
    let multi = ids.len() > 1;
    let mut journal = ctx.existing_journal()?;
    let rt = runtime()?;
    rt.block_on(async {
        let deadline = overall.map(|d| d.instant());
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
        fill_from_journal(journal.as_ref(), &mut trackers);
        let missing = not_found(&trackers);
        if !missing.is_empty() {
            relays::shutdown(&client).await;
            if reach.complete() {
                return Err(Error::Runtime(format!(
                    "job {} not found on {} relay(s)",
                    missing.join(", "),
                    urls.len()
                )));
            }
            let e = follow::reach_error(
                &reach,
                load.total(),
                &format!("looking up job {}", missing.join(", ")),
            );
            if overall.is_some_and(|d| d.expired()) {
                // --timeout passed before the job was even found: 124.
                render::print_error(&e.to_string());
                return Ok(124);
            }
            return Err(e);
        }
        if !reach.complete() {
            render::print_warning(&reach.describe());
        }
        let spinner = spinner(ctx, a.json);
        let mut emit = |t: &JobTracker, u: &Update| {
            record_update(journal.as_mut(), t, u);
            if a.json {
                let _ = ctx.print(&update_json(t, u).to_string());
            } else if !ctx.quiet {
                spinner.println(update_line(t, u, multi));
            }
            spinner.set_message(spinner_text(t));
        };
        // What is already known, in order, before live updates.
        for t in &trackers {
            for s in t.timeline() {
                emit(t, &Update::Status(s.clone()));
            }
            if let Some(r) = t.result() {
                emit(t, &Update::Result(r.clone()));
            }
        }
        let waiting = !a.json
            && !ctx.quiet
            && trackers
                .iter()
                .all(|t| t.latest_status().is_none() && t.result().is_none());
        let names: Vec<String> = trackers.iter().map(|t| short_id(&t.id.to_hex())).collect();
        let ready_spinner = spinner.clone();
        let on_ready = move || {
            if waiting {
                ready_spinner.println(format!(
                    "{}  pending    watching {}, waiting for the worker…",
                    clock(now().as_secs()),
                    names.join(", ")
                ));
            }
            tracing::info!("watching {}", names.join(", "));
        };
        let end = follow::watch(&client, &mut trackers, deadline, on_ready, &mut emit).await;
        spinner.finish_and_clear();
        relays::shutdown(&client).await;
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
            render::print_error(&format!(
                "timed out after {} waiting for {}",
                config::format_duration(overall.map(|d| d.total()).unwrap_or_default()),
                unfinished.join(", ")
            ));
            return Ok(124);
        }
        if !a.json {
            for t in &trackers {
                ctx.say(summary(t, color));
            }
        }
        let all_ok = trackers.iter().all(|t| t.state() == JobState::Success);
        Ok(if a.exit_status && !all_ok {
            exit::FAILURE
        } else {
            exit::OK
        })
    })
}

/// A spinner on a terminal; plain stderr lines otherwise.
#[derive(Clone)]
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn println(&self, line: String) {
        match &self.0 {
            Some(pb) => pb.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn set_message(&self, msg: String) {
        if let Some(pb) = &self.0 {
            pb.set_message(msg);
        }
    }

    fn finish_and_clear(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

fn spinner(ctx: &Ctx, json: bool) -> Progress {
    if json || ctx.quiet || !render::stderr_is_tty() {
        return Progress(None);
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.enable_steady_tick(std::time::Duration::from_millis(100));
    Progress(Some(pb))
}

fn spinner_text(t: &JobTracker) -> String {
    format!("{} {}", short_id(&t.id.to_hex()), t.state())
}

/// Load jobs named on the command line, with their relays. Starts the
/// command's deadline; fails when no relay answered at all (timed out,
/// or unreachable), warns when some did not.
fn load(
    ctx: &Ctx,
    jobs: &[String],
    read: &crate::cli::ReadArgs,
) -> Result<(Config, Vec<RelayUrl>, Vec<JobTracker>, Reach)> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(read.timeout.as_deref(), cfg.query_timeout)?;
    let refs = job_refs(jobs)?;
    let urls = read_relays(&cfg, &read.relays, &refs)?;
    let ids: Vec<EventId> = refs.iter().map(|r| r.id).collect();
    let rt = runtime()?;
    let (mut trackers, reach) = rt.block_on(async {
        let client = reader(ctx, &cfg, &urls, false).await?;
        let t = follow::load_jobs_reach(&client, &urls, &ids, deadline.remaining()).await;
        relays::shutdown(&client).await;
        Ok::<_, Error>(t)
    })?;
    let what = ids
        .iter()
        .map(|id| short_id(&id.to_hex()))
        .collect::<Vec<_>>()
        .join(", ");
    if reach.none_answered() {
        return Err(follow::reach_error(
            &reach,
            deadline.total(),
            &format!("looking up job {what}"),
        ));
    }
    if !reach.complete() {
        render::print_warning(&reach.describe());
    }
    let mut journal = ctx.existing_journal()?;
    fill_from_journal(journal.as_ref(), &mut trackers);
    record_in_journal(journal.as_mut(), &trackers);
    Ok((cfg, urls, trackers, reach))
}

/// A worker's name for display; "(unnamed)" when its ad has none.
fn ad_name(ad: &WorkerAd, max: usize) -> String {
    if ad.name.trim().is_empty() {
        "(unnamed)".to_string()
    } else {
        clip(&render::one_line(&ad.name), max)
    }
}

fn jobs_table(views: &[JobView], names: &HashMap<String, String>, color: bool) -> String {
    let now = now().as_secs();
    // A "note" column (failure reason, queue position) only when there is one.
    let notes = views
        .iter()
        .any(|v| v.reason.is_some() || v.queue_position.is_some());
    let mut headers = vec![
        "job", "age", "worker", "cmd", "status", "exit", "duration", "amount",
    ];
    if notes {
        headers.push("note");
    }
    let mut t = render::table(&headers, color);
    for v in views {
        let worker = v
            .worker
            .as_ref()
            .map(|w| {
                names
                    .get(w)
                    .map(|n| clip(n, 40))
                    .unwrap_or_else(|| short_npub(w))
            })
            .unwrap_or_else(|| "-".into());
        let cmd = v
            .cmd
            .as_ref()
            .map(|c| {
                let s = std::iter::once(c.as_str())
                    .chain(v.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ");
                clip(&s, 40)
            })
            .unwrap_or_else(|| "(not found)".into());
        let mut row = vec![
            Cell::new(short_id(&v.id)),
            Cell::new(
                v.created_at
                    .map(|c| age(now, c))
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(worker),
            Cell::new(cmd),
            state_cell(v.state, v.stale, color),
            Cell::new(
                v.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(v.duration.map(run_time).unwrap_or_else(|| "-".into())),
            Cell::new(match (v.amount, &v.unit) {
                (Some(a), Some(u)) => format!("{a} {}", sanitize(u)),
                _ => "-".into(),
            }),
        ];
        if notes {
            row.push(Cell::new(match (&v.reason, v.queue_position) {
                (Some(r), _) => clip(&render::one_line(r), 60),
                (None, Some(q)) => format!("#{q} in queue"),
                (None, None) => String::new(),
            }));
        }
        t.add_row(row);
    }
    t.to_string()
}

pub fn status(ctx: &Ctx, a: StatusArgs) -> Result<i32> {
    let (_cfg, _urls, trackers, reach) = load(ctx, &a.jobs, &a.read)?;
    let views: Vec<JobView> = trackers.iter().map(|t| t.view(now())).collect();
    let missing = not_found(&trackers);
    if a.json {
        ctx.print(&to_json(&views)?)?;
    } else {
        ctx.say(jobs_table(&views, &HashMap::new(), render::stderr_color()));
        for v in &views {
            ctx.print(&format!(
                "{} {}",
                v.id,
                if v.found {
                    v.state.as_str()
                } else {
                    "not-found"
                }
            ))?;
        }
    }
    if !missing.is_empty() {
        if reach.complete() {
            render::print_error(&format!(
                "not found on any relay or in the journal: {}",
                missing.join(", ")
            ));
        } else {
            let total = ctx.deadline().total();
            render::print_error(&format!(
                "not found on the relays that answered or in the journal: {} ({})",
                missing.join(", "),
                follow::reach_error(&reach, total, "looking them up")
            ));
        }
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

/// Load one job that must exist (on a relay or in the journal).
fn load_one(
    ctx: &Ctx,
    job: &str,
    read: &crate::cli::ReadArgs,
) -> Result<(Config, Vec<RelayUrl>, JobTracker)> {
    let (cfg, urls, trackers, reach) = load(ctx, &[job.to_string()], read)?;
    let t = trackers
        .into_iter()
        .next()
        .ok_or_else(|| Error::input("no job given"))?;
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
    Ok((cfg, urls, t))
}

pub fn show(ctx: &Ctx, a: ShowArgs) -> Result<i32> {
    let (cfg, urls, t) = load_one(ctx, &a.job, &a.read)?;
    let job = t
        .job()
        .ok_or_else(|| Error::Runtime(format!("event {} is not a job request", t.id)))?;
    // The worker's name is a nicety: only what is left of the deadline.
    let deadline = ctx.deadline();
    let ad: Option<WorkerAd> = if deadline.expired() {
        None
    } else {
        runtime()?.block_on(async {
            let client = reader(ctx, &cfg, &urls, false).await.ok()?;
            let ad = follow::worker_ad(&client, &urls, job.worker, deadline.remaining()).await;
            relays::shutdown(&client).await;
            ad.into_ad()
        })
    };
    let journal_timeline = match ctx.existing_journal()? {
        Some(j) => j.timeline(&t.id)?,
        None => Vec::new(),
    };
    let v = t.view(now());
    let env_keys: Vec<&str> = job.env.iter().map(|(k, _)| k.as_str()).collect();
    let secret_keys: Vec<&str> = job.secrets.iter().map(|(k, _)| k.as_str()).collect();
    let timeline: Vec<serde_json::Value> = t
        .timeline()
        .map(|s| {
            json!({"at": s.at.as_secs(), "state": s.state, "status": s.raw, "message": s.message,
            "queue_position": s.queue_position, "reason": s.reason})
        })
        .collect();
    if a.json {
        let value = json!({
            "id": v.id,
            "author": v.author,
            "created_at": v.created_at,
            "worker": {"hex": job.worker.to_hex(), "npub": npub(&job.worker), "name": ad.as_ref().filter(|a| !a.name.is_empty()).map(|a| a.name.clone())},
            "cmd": job.cmd, "args": job.args,
            "env": job.env.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "secret_keys": secret_keys,
            "payment": job.payment.as_deref().and_then(|p| PaymentToken::parse(p).ok()).map(|p| p.info().clone()),
            "parent": job.parent.map(|p| p.to_hex()),
            "state": v.state, "stale": v.stale,
            "reason": v.reason, "queue_position": v.queue_position,
            "timeline": timeline,
            "journal": journal_timeline,
            "result": t.result().map(|r| json!({
                "success": r.success, "exit_code": r.exit_code, "duration": r.duration,
                "stdout": r.stdout, "stderr": r.stderr, "at": r.at.as_secs(),
                "error": r.error, "change": v.change,
            })),
        });
        ctx.print(&value.to_string())?;
        return Ok(exit::OK);
    }
    let color = render::stderr_color();
    let now_s = now().as_secs();
    let mut lines = vec![
        format!("job      {}", v.id),
        format!(
            "created  {} ({} ago)",
            v.created_at.map(clock).unwrap_or_default(),
            v.created_at.map(|c| age(now_s, c)).unwrap_or_default()
        ),
        format!(
            "worker   {}{}",
            npub(&job.worker),
            ad.as_ref()
                .map(|a| format!(" ({})", ad_name(a, 80)))
                .unwrap_or_default()
        ),
        format!(
            "command  {}",
            sanitize(&format!("{} {}", job.cmd, job.args.join(" ")))
        ),
    ];
    if !env_keys.is_empty() {
        lines.push(format!("env      {}", sanitize(&env_keys.join(", "))));
    }
    if !secret_keys.is_empty() {
        lines.push(format!(
            "secrets  {} (values encrypted to the worker)",
            sanitize(&secret_keys.join(", "))
        ));
    }
    lines.push(format!(
        "payment  {}",
        job.payment
            .as_deref()
            .map(redact_str)
            .unwrap_or_else(|| "none (unpaid)".into())
    ));
    if let Some(p) = job.parent {
        lines.push(format!("parent   {p}"));
    }
    lines.push(format!(
        "state    {}{}",
        v.state,
        if v.stale {
            " (stale: pending for over 72 hours)"
        } else {
            ""
        }
    ));
    if let Some(r) = &v.reason {
        lines.push(format!("reason   {}", reason_text(r)));
    }
    if let Some(q) = v.queue_position {
        lines.push(format!("queue    #{q}"));
    }
    lines.push("timeline".into());
    if t.timeline().next().is_none() {
        lines.push("  (no status from the worker yet)".into());
    }
    for s in t.timeline() {
        lines.push(format!("  {}", status_line(s, "")));
    }
    if t.result().is_some() {
        lines.push(summary(&t, color));
    }
    if !journal_timeline.is_empty() {
        lines.push("journal".into());
        for e in &journal_timeline {
            lines.push(format!(
                "  {}  {:<10} {:<8} {}",
                clock(e.at),
                e.state,
                e.source,
                render::one_line(&e.message)
            ));
        }
    }
    ctx.say(lines.join("\n"));
    ctx.print(&v.id)?;
    Ok(exit::OK)
}

pub fn logs(ctx: &Ctx, a: LogsArgs) -> Result<i32> {
    let (_cfg, _urls, t) = load_one(ctx, &a.job, &a.read)?;
    let which = if a.stderr { "stderr" } else { "stdout" };
    let result = t.result().ok_or_else(|| {
        Error::Runtime(format!(
            "job {} has no result yet (state: {})",
            short_id(&t.id.to_hex()),
            t.state()
        ))
    })?;
    let url = if a.stderr {
        &result.stderr
    } else {
        &result.stdout
    };
    let url = url.as_deref().ok_or_else(|| {
        Error::Runtime(format!(
            "the result of job {} has no {which} URL",
            short_id(&t.id.to_hex())
        ))
    })?;
    if !jobctl::protocol::is_url(url) {
        // Some workers put the output itself in the tag: print it as given.
        // There is no content hash to check it against.
        render::print_warning(&format!(
            "the worker sent {which} inline, not as a URL: printed as given, unverifiable (no hash to check)"
        ));
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(url.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| Error::Runtime(format!("cannot write to stdout: {e}")))?;
        return Ok(exit::OK);
    }
    // Downloaded into a spool file under the command's deadline (the HTTP
    // client's own whole-second timer must not beat it) and verified before
    // the first byte is printed, with memory bounded whatever the log's size.
    let deadline = ctx.deadline();
    let budget = deadline.remaining() + std::time::Duration::from_secs(2);
    let owned = url.to_string();
    let (file, total) = runtime()?.block_on(deadline.bound(
        &format!("downloading {}", clip(url, 200)),
        async move {
            tokio::task::spawn_blocking(move || joblogs::download(&owned, budget))
                .await
                .map_err(|e| Error::Runtime(format!("log download task failed: {e}")))?
        },
    ))?;
    let mut out = std::io::stdout().lock();
    joblogs::copy_out(file, total, &mut out)?;
    Ok(exit::OK)
}

pub fn list(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(a.read.timeout.as_deref(), cfg.query_timeout)?;
    let now_ts = now();
    let parse_t = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                config::parse_time(s, now_ts).map_err(|e| Error::input(format!("{flag}: {e}")))
            })
            .transpose()
    };
    let since = parse_t("--since", &a.since)?;
    let until = parse_t("--until", &a.until)?;
    if a.limit == 0 {
        return Err(Error::input("--limit must be at least 1"));
    }
    // Normalise each wanted state the way worker statuses are normalised.
    let states: Option<Vec<String>> = a
        .status
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_ascii_lowercase())
                .filter(|x| !x.is_empty())
                .map(|x| match (x.as_str(), JobState::parse(&x)) {
                    ("stale", _) => Ok(x),
                    ("unknown", _) => Ok(x),
                    (_, JobState::Unknown) => {
                        Err(Error::input(format!("--status: `{x}` is not a job state")))
                    }
                    (_, st) => Ok(st.as_str().to_string()),
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let worker = a
        .worker
        .as_deref()
        .map(|w| config::parse_pubkey(w).map_err(|e| Error::input(format!("--worker: {e}"))))
        .transpose()?;
    let journal = ctx.existing_journal()?;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut page_full = false;
    let mut oldest: Option<u64> = None;
    let mut views: Vec<JobView> = Vec::new();
    if a.local {
        if let Some(j) = &journal {
            let recs = j.list(
                since.map(|t| t.as_secs()),
                until.map(|t| t.as_secs()),
                a.limit,
            )?;
            page_full = recs.len() >= a.limit;
            oldest = recs.iter().map(|r| r.created_at).min();
            views = recs.iter().map(|r| view_from_record(r, now_ts)).collect();
        }
    } else {
        let urls = read_relays(&cfg, &a.read.relays, &[])?;
        let key = ctx.optional_key(&cfg)?;
        let mine = key.as_ref().map(|k| k.keys.public_key());
        let author = match &a.author {
            Some(s) => {
                config::parse_pubkey(s).map_err(|e| Error::input(format!("--author: {e}")))?
            }
            None => mine.ok_or_else(|| {
                Error::input(
                    "no key to list jobs for: pass --author PUBKEY, use --local, or set up a key (`jobctl key generate`)",
                )
            })?,
        };
        let q = ListQuery {
            author: Some(author),
            since,
            until,
            limit: a.limit,
        };
        let rt = runtime()?;
        let (trackers, reach, ads) = rt.block_on(async {
            let client = relays::reader(key.as_ref().map(|k| &k.keys), &urls, false).await;
            let (trackers, reach) =
                follow::list_jobs_reach(&client, &urls, &q, deadline.remaining()).await;
            let mut workers: Vec<PublicKey> = trackers.iter().filter_map(|t| t.worker()).collect();
            workers.sort();
            workers.dedup();
            // Worker names are a nicety: only what is left of the deadline.
            let ads = if deadline.expired() {
                Vec::new()
            } else {
                follow::workers(&client, &urls, Some(workers), deadline.remaining()).await
            };
            relays::shutdown(&client).await;
            (trackers, reach, ads)
        });
        if reach.none_answered() {
            return Err(follow::reach_error(
                &reach,
                deadline.total(),
                "listing jobs",
            ));
        }
        if !reach.complete() {
            render::print_warning(&reach.describe());
        }
        names = ads
            .into_iter()
            .filter(|a| !a.name.is_empty())
            .map(|a| (a.pubkey.to_hex(), a.name))
            .collect();
        let mut journal = journal;
        record_in_journal(journal.as_mut(), &trackers);
        page_full = trackers.len() >= a.limit;
        oldest = trackers
            .iter()
            .filter_map(|t| t.request.as_ref())
            .map(|r| r.created_at.as_secs())
            .min();
        views = trackers.iter().map(|t| t.view(now_ts)).collect();
        // Merge the journal: our jobs the relays do not have (unpublished,
        // or dropped) still show.
        if let (Some(j), true) = (&journal, Some(author) == mine) {
            let lower = if page_full {
                oldest.map(|o| o.max(since.map(|s| s.as_secs()).unwrap_or(0)))
            } else {
                since.map(|s| s.as_secs())
            };
            for r in j.list(lower, until.map(|t| t.as_secs()), a.limit)? {
                if !views.iter().any(|v| v.id == r.id) {
                    views.push(view_from_record(&r, now_ts));
                }
            }
            views.sort_by(|x, y| y.created_at.cmp(&x.created_at).then(x.id.cmp(&y.id)));
            views.truncate(a.limit);
        }
    }
    let views: Vec<JobView> = views
        .into_iter()
        .filter(|v| worker.is_none_or(|w| v.worker.as_deref() == Some(&w.to_hex())))
        .filter(|v| {
            states.as_ref().is_none_or(|ss| {
                ss.iter().any(|s| {
                    if s == "stale" {
                        v.stale
                    } else {
                        s == v.state.as_str()
                    }
                })
            })
        })
        .collect();
    if a.json {
        ctx.print(&to_json(&views)?)?;
    } else {
        ctx.say(jobs_table(&views, &names, render::stderr_color()));
        for v in &views {
            ctx.print(&v.id)?;
        }
        if page_full {
            if let Some(o) = oldest {
                ctx.say(format!(
                    "more jobs may be older: next page with --until {}",
                    o.saturating_sub(1)
                ));
            }
        }
    }
    Ok(exit::OK)
}

pub fn workers(ctx: &Ctx, a: WorkersArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(a.read.timeout.as_deref(), cfg.query_timeout)?;
    let urls = read_relays(&cfg, &a.read.relays, &[])?;
    let now_ts = now();
    let me = ctx.optional_key(&cfg)?.map(|k| k.keys.public_key());
    let (ads, reach, lists) = runtime()?.block_on(async {
        let client = reader(ctx, &cfg, &urls, false).await?;
        let (ads, reach) = follow::workers_reach(&client, &urls, None, deadline.remaining()).await;
        // Freelists (for "free" to your key): what is left of the deadline.
        let mut pointers: Vec<String> = ads
            .iter()
            .filter_map(|a| a.access.freelist_event.clone())
            .collect();
        pointers.sort();
        pointers.dedup();
        let lists = if me.is_some() && !pointers.is_empty() && !deadline.expired() {
            follow::list_members_of(&client, &urls, &pointers, deadline.remaining()).await
        } else {
            HashMap::new()
        };
        relays::shutdown(&client).await;
        Ok::<_, Error>((ads, reach, lists))
    })?;
    let free = |w: &WorkerAd| me.and_then(|m| follow::free_reason(w, &m, &lists));
    if reach.none_answered() {
        return Err(follow::reach_error(
            &reach,
            deadline.total(),
            "looking up worker advertisements",
        ));
    }
    if !reach.complete() {
        render::print_warning(&reach.describe());
    }
    let ads: Vec<WorkerAd> = ads
        .into_iter()
        .filter(|w| !a.online || w.is_online(now_ts))
        .filter(|w| a.mint.as_deref().is_none_or(|m| w.accepts_mint(m)))
        .collect();
    if a.json {
        let v: Vec<serde_json::Value> = ads
            .iter()
            .map(|w| {
                let mut j = serde_json::to_value(w).unwrap_or_default();
                j["npub"] = json!(npub(&w.pubkey));
                j["online"] = json!(w.is_online(now_ts));
                j["unnamed"] = json!(w.name.trim().is_empty());
                let reason = free(w);
                j["free_for_me"] = json!(reason.is_some());
                j["free_reason"] = json!(reason);
                j
            })
            .collect();
        ctx.print(&serde_json::Value::Array(v).to_string())?;
        return Ok(exit::OK);
    }
    let color = render::stderr_color();
    let mut t = render::table(
        &[
            "name",
            "npub",
            "arch",
            "act",
            "price",
            "mints",
            "queue",
            "online",
            "last seen",
            "for you",
        ],
        color,
    );
    for w in &ads {
        let price = if w.prices.is_empty() {
            "free".to_string()
        } else {
            let p = &w.prices[0];
            if p.period.is_empty() {
                format!("{} {}", p.rate, clip(&p.unit, 12))
            } else {
                format!("{} {}/{}", p.rate, clip(&p.unit, 12), clip(&p.period, 12))
            }
        };
        let for_you = if free(w).is_some() {
            "free".to_string()
        } else if w.access.is_whitelisted == Some(true) {
            "whitelist".to_string()
        } else {
            "-".to_string()
        };
        let mints: Vec<String> = w.prices.iter().map(|p| clip(&p.mint, 60)).collect();
        let online = w.is_online(now_ts);
        let mut online_cell = Cell::new(if online { "yes" } else { "no" });
        if color {
            online_cell = online_cell.fg(if online {
                comfy_table::Color::Green
            } else {
                comfy_table::Color::DarkGrey
            });
        }
        t.add_row(vec![
            Cell::new(ad_name(w, 40)),
            Cell::new(short_npub(&w.pubkey.to_hex())),
            Cell::new(clip(w.architecture.as_deref().unwrap_or("-"), 20)),
            Cell::new(clip(w.software_version("act").unwrap_or("-"), 20)),
            Cell::new(price),
            Cell::new(if mints.is_empty() {
                "-".to_string()
            } else {
                mints.join(" ")
            }),
            Cell::new(format!(
                "{}/{}",
                w.current_queue_depth
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "?".into()),
                w.max_concurrent_jobs
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "?".into())
            )),
            online_cell,
            Cell::new(format!("{} ago", age(now_ts.as_secs(), w.at.as_secs()))),
            Cell::new(for_you),
        ]);
    }
    ctx.say(t.to_string());
    for w in &ads {
        ctx.print(&npub(&w.pubkey))?;
    }
    Ok(exit::OK)
}

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

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Job ids (hex, note1, nevent1); `-` reads them from stdin, one per line.
    #[arg(required = true, value_name = "JOB")]
    pub jobs: Vec<String>,

    /// Exit 0 when every job succeeded, 1 when one failed, errored or was cancelled.
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

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Job id (hex, note1, nevent1), or `-` for the first id on stdin.
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Job id (hex, note1, nevent1), or `-` for the first id on stdin.
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Print the stderr log instead of stdout.
    #[arg(long)]
    pub stderr: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

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

#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// Only workers whose advertisement is under 5 minutes old.
    #[arg(long)]
    pub online: bool,

    /// Only workers that accept this mint.
    #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
    pub mint: Option<String>,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}
