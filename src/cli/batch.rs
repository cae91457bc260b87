//! `rerun --batch FILE`: many jobs from an NDJSON file (the flags give
//! defaults). Every line is checked before anything is signed
//! ([`jobctl::batch::plan`]); all new jobs are journaled in one
//! transaction, then published a bounded number at a time.

use jobctl::batch::{self, BatchPlan, Planned, Publish, Targets};
use jobctl::config::Config;
use jobctl::dispatch::DispatchReport;
use jobctl::error::{exit, Error, Result};
use jobctl::journal::Journal;
use nostr_sdk::prelude::*;

use super::rerun::{inputs, show_notices, RerunArgs};
use super::{read_stdin, render, runtime, Ctx};

/// Run a batch (`file` is `-` for stdin) over `relays`.
pub(crate) fn run(
    ctx: &Ctx,
    cfg: &Config,
    a: &RerunArgs,
    file: &str,
    relays: &[RelayUrl],
    min_accept: usize,
) -> Result<i32> {
    check_flags(a)?;
    let text = read_batch(file)?;
    let key = ctx.key(cfg)?;
    let existing = ctx.existing_journal()?;
    let plan = plan(ctx, cfg, a, &text, &key.keys, existing.as_ref())?;
    let mut journal = match existing {
        Some(j) => j,
        None => ctx.journal()?,
    };
    // The workers' inbox relays (NIP-65), then sign every new job and
    // journal them all before the first publish.
    let on = !a.no_outbox && cfg.outbox;
    let (jobs, deadline) = (&plan.jobs, ctx.deadline());
    let routing = Targets::route(on, &journal, &key.keys, relays, jobs, deadline);
    let targets = runtime()?.block_on(routing);
    let events = batch::journal_all(&mut journal, &plan.jobs, &key.keys, &targets)?;
    if !a.json {
        ctx.say(dispatching(
            plan.jobs.len(),
            relays.len(),
            &targets,
            a.concurrency,
        ));
    }
    let workers: Vec<PublicKey> = plan.jobs.iter().map(|p| p.spec.worker).collect();
    let how = Publish {
        targets: &targets,
        workers: &workers,
        deadline: ctx.deadline(),
        concurrency: a.concurrency,
        min_accept,
    };
    let payments = batch::payments(&plan.jobs);
    let mut notices = Vec::new();
    let reports = runtime()?.block_on(batch::publish(
        &mut journal,
        &key.keys,
        &events,
        &payments,
        how,
        &mut notices,
    ));
    targets.remember(&journal);
    show_notices(ctx, &notices);
    print_reports(ctx, &plan.jobs, &reports, a.json, min_accept)
}

/// The batch's lines, from `file` or stdin (`-`).
fn read_batch(file: &str) -> Result<String> {
    if file == "-" {
        return read_stdin("the batch");
    }
    std::fs::read_to_string(file).map_err(|e| Error::input(format!("--batch {file}: {e}")))
}

/// `dispatching N job(s) via M relay(s)[ + K from the workers' relay
/// lists], C at a time`.
fn dispatching(jobs: usize, relays: usize, targets: &Targets, concurrency: usize) -> String {
    format!(
        "dispatching {jobs} job(s) via {relays} relay(s){}, {concurrency} at a time",
        match targets.added() {
            0 => String::new(),
            n => format!(" + {n} from the workers' relay lists"),
        },
    )
}

/// Plan the batch's `text`; every bad line is an `error:` line, and any
/// means nothing is signed (exit 2).
fn plan(
    ctx: &Ctx,
    cfg: &Config,
    a: &RerunArgs,
    text: &str,
    keys: &Keys,
    journal: Option<&Journal>,
) -> Result<BatchPlan> {
    let mut notices = Vec::new();
    let plan = batch::plan(cfg, &inputs(a), text, keys, journal, &mut notices);
    show_notices(ctx, &notices);
    let plan = plan?;
    if !plan.errors.is_empty() {
        for e in &plan.errors {
            ctx.error(e);
        }
        return Err(Error::input(format!(
            "{} bad line(s) in the batch; nothing was signed or published",
            plan.errors.len()
        )));
    }
    if plan.jobs.is_empty() {
        return Err(Error::input("the batch holds no jobs"));
    }
    Ok(plan)
}

/// The flags a batch takes from each line instead, or has not.
fn check_flags(a: &RerunArgs) -> Result<()> {
    if a.token.is_some()
        || a.unpaid
        || a.idempotency_key.is_some()
        || a.dry_run
        || !a.secrets.is_empty()
        || a.amount.is_some()
        || a.lock
    {
        return Err(Error::input(
            "--batch takes tokens, --unpaid, secrets and idempotency keys from each line, and has no --dry-run, --amount or --lock",
        ));
    }
    if a.stdin.is_some() {
        return Err(Error::input("--batch has no --stdin"));
    }
    if a.concurrency == 0 {
        return Err(Error::input("--concurrency must be at least 1"));
    }
    Ok(())
}

/// One id (or JSON object) per job on stdout; a table (up to 50 jobs)
/// and the tally on stderr. Exit 1 when any job fell short.
fn print_reports(
    ctx: &Ctx,
    jobs: &[Planned],
    reports: &[DispatchReport],
    json: bool,
    min_accept: usize,
) -> Result<i32> {
    let mut table = render::table(
        &["line", "job", "accepted", "result"],
        render::stderr_color(),
    );
    for (p, r) in jobs.iter().zip(reports) {
        if json {
            let mut v = serde_json::json!({
                "line": p.line, "id": r.id, "accepted": r.accepted, "ok": r.ok(),
                "idempotent": p.existing.is_some(), "relays": r.relays,
            });
            if !r.worker_inbox.is_empty() {
                v["worker_inbox"] = serde_json::json!(r.worker_inbox);
            }
            ctx.print(&v.to_string())?;
        } else {
            ctx.print(&r.id)?;
        }
        table.add_row(vec![
            p.line.to_string(),
            render::short_id(&r.id),
            format!("{}/{}", r.accepted, r.relays.len()),
            if r.ok() { "published" } else { "NOT published" }.into(),
        ]);
    }
    let ok_count = reports.iter().filter(|r| r.ok()).count();
    if !json {
        if reports.len() <= 50 {
            ctx.say(table.to_string());
        }
        ctx.say(format!(
            "{ok_count}/{} job(s) reached {min_accept} relay(s)",
            reports.len()
        ));
    }
    if ok_count < reports.len() {
        if ctx.quiet {
            ctx.error(&format!(
                "{} job(s) did not reach {min_accept} relay(s)",
                reports.len() - ok_count
            ));
        }
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}
