//! `rerun`: one job, a past job again, or a batch; journaled before it is
//! published, idempotent with a key.

use clap::Args;
use std::collections::BTreeMap;

use crate::cli::render;
use futures::StreamExt;
use jobctl::config::{self, Config};
use jobctl::dispatch::{self, DispatchReport, JobSpec};
use jobctl::error::{exit, Error, Result};
use jobctl::follow;
use jobctl::journal::Journal;
use jobctl::keys::npub;
use jobctl::payment::PaymentToken;
use jobctl::protocol::{
    check_text, parse_key_value, validate_env_key, validate_job_fields, JobRef, JobRequest, PTag,
};
use jobctl::relays;
use nostr_sdk::prelude::*;
use serde::Deserialize;

use super::{min_accept_for, read_stdin, relays_for, require_relays, runtime, to_json, Ctx};

/// Env var with the idempotency key (e.g. the CI run id).
const ENV_IDEMPOTENCY_KEY: &str = "JOBCTL_IDEMPOTENCY_KEY";

/// A past job that `rerun JOB` starts from.
struct Base {
    req: JobRequest,
    author: PublicKey,
    id: EventId,
}

/// Resolve every rerun input except the token into a validated spec.
fn job_spec(cfg: &Config, a: &RerunArgs, base: Option<&Base>) -> Result<JobSpec> {
    let worker = match (&a.worker, base) {
        (Some(w), _) => {
            config::parse_pubkey(w).map_err(|e| Error::input(format!("--worker: {e}")))?
        }
        (None, Some(b)) => b.req.worker,
        (None, None) => cfg.worker.ok_or_else(|| {
            Error::input(
                "no worker: pass --worker, set JOBCTL_WORKER, or set `worker` in the config",
            )
        })?,
    };
    let p_tag = match (&a.p_tag, base) {
        (Some(p), _) => config::parse_p_tag(p).map_err(|e| Error::input(format!("--p: {e}")))?,
        (None, Some(b)) if b.req.p == b.req.worker => PTag::Worker,
        (None, Some(b)) if b.req.p == b.author => PTag::SelfKey,
        (None, Some(b)) => PTag::Key(b.req.p),
        (None, None) => cfg.p_tag,
    };
    if p_tag == PTag::SelfKey {
        render::print_warning(
            "--p self: today's Loom clients and workers identify the worker by the `p` tag alone; \
             with your own key there, workers will not see this job as theirs",
        );
    }
    let cmd = a
        .cmd
        .clone()
        .or_else(|| base.map(|b| b.req.cmd.clone()))
        .unwrap_or_else(|| cfg.cmd.clone());
    if cmd.trim().is_empty() {
        return Err(Error::input("--cmd must not be empty"));
    }
    let args = if !a.args.is_empty() {
        a.args.clone()
    } else if let Some(b) = base {
        b.req.args.clone()
    } else {
        cfg.args.clone()
    };
    let mut env: Vec<(String, String)> = base.map(|b| b.req.env.clone()).unwrap_or_default();
    for s in &a.env {
        let (k, v) = parse_key_value(s).map_err(|e| Error::input(format!("--env: {e}")))?;
        match env.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    }
    let secrets = a
        .secrets
        .iter()
        .map(|s| secret_value(s))
        .collect::<Result<Vec<_>>>()?;
    if let Some(b) = base {
        let missing: Vec<&str> = b
            .req
            .secrets
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !secrets.iter().any(|(s, _)| s == k))
            .collect();
        if !missing.is_empty() {
            return Err(Error::input(format!(
                "job {} had secrets {}: pass --secret for each (secret values are never stored)",
                render::short_id(&b.id.to_hex()),
                missing.join(", ")
            )));
        }
    }
    let parent = match (&a.run, base) {
        (Some(r), _) => Some(EventId::parse(r.trim()).map_err(|_| {
            Error::input(format!(
                "--run: `{r}` is not an event id (hex, note1 or nevent1)"
            ))
        })?),
        (None, Some(b)) => b.req.parent,
        (None, None) => None,
    };
    validate_job_fields(&cmd, &args, &env, &secrets).map_err(Error::input)?;
    Ok(JobSpec {
        worker,
        p_tag,
        cmd,
        args,
        token: None,
        parent,
        env,
        secrets,
        // A rerun keeps the original's input unless --stdin replaces it.
        content: base.map(|b| b.req.content.clone()).unwrap_or_default(),
    })
}

/// Largest job input (`--stdin`) accepted: 64 KiB, the smallest common
/// relay cap on a whole event (strfry's default).
const MAX_STDIN_BYTES: usize = 64 * 1024;

/// The job's input from `--stdin FILE|-`, checked: UTF-8 (it rides in
/// the event's content), at most [`MAX_STDIN_BYTES`], and not sharing
/// stdin with `--token -`.
fn job_input(a: &RerunArgs) -> Result<Option<String>> {
    let Some(src) = a.stdin.as_deref() else {
        return Ok(None);
    };
    let bytes = if src == "-" {
        if a.token.as_deref() == Some("-") {
            return Err(Error::input(
                "--stdin - cannot be combined with --token -: both would read stdin",
            ));
        }
        let mut buf = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin().lock(), MAX_STDIN_BYTES as u64 + 1),
            &mut buf,
        )
        .map_err(|e| Error::io("cannot read the job's input from stdin", e))?;
        buf
    } else {
        let f =
            std::fs::File::open(src).map_err(|e| Error::input(format!("--stdin {src}: {e}")))?;
        let mut buf = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(f, MAX_STDIN_BYTES as u64 + 1),
            &mut buf,
        )
        .map_err(|e| Error::input(format!("--stdin {src}: {e}")))?;
        buf
    };
    if bytes.len() > MAX_STDIN_BYTES {
        return Err(Error::input(format!(
            "--stdin: the job's input is over {} KiB (relays refuse events that big)",
            MAX_STDIN_BYTES / 1024
        )));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::input("--stdin: the job's input is not UTF-8 text"))
}

/// `--secret KEY=VALUE`, or `--secret KEY` taking the value from the environment.
fn secret_value(s: &str) -> Result<(String, String)> {
    if s.contains('=') {
        return parse_key_value(s).map_err(|e| Error::input(format!("--secret: {e}")));
    }
    let (k, _) =
        parse_key_value(&format!("{s}=")).map_err(|e| Error::input(format!("--secret: {e}")))?;
    let v = std::env::var(&k)
        .map_err(|_| Error::input(format!("--secret {k}: no value given and ${k} is not set")))?;
    Ok((k, v))
}

/// `$JOBCTL_TOKEN`, when set to something other than blanks.
fn env_token() -> Option<String> {
    std::env::var("JOBCTL_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
}

/// The token from `--token`, `--token -` or `$JOBCTL_TOKEN`; `None` only
/// with `--unpaid`.
fn token(a: &RerunArgs) -> Result<Option<PaymentToken>> {
    if a.unpaid {
        return Ok(None);
    }
    let raw = match a.token.clone().or_else(env_token).as_deref() {
        Some("-") => read_stdin("the token")?,
        Some(t) => t.to_string(),
        None => {
            return Err(Error::input(
                "no payment token: pass --token (or `--token -` for stdin, or $JOBCTL_TOKEN), \
                 or --unpaid for a job without payment",
            ))
        }
    };
    PaymentToken::parse(&raw).map(Some)
}

/// [`token`], except that with no token given at all, a worker whose
/// freelist holds our key needs none: the job goes unpaid, and says why.
fn token_or_free(
    ctx: &Ctx,
    a: &RerunArgs,
    worker: PublicKey,
    keys: &Keys,
    relays: &[RelayUrl],
) -> Result<Option<PaymentToken>> {
    let none_given = !a.unpaid && a.token.is_none() && env_token().is_none();
    if none_given && !relays.is_empty() {
        // A third of the command's deadline: the publish needs the rest.
        let budget = jobctl::deadline::Deadline::after(ctx.deadline().share(3));
        let reason = runtime()?.block_on(async {
            let client = relays::reader(Some(keys), relays, false).await;
            let ad = follow::worker_ad(&client, relays, worker, budget.share(2)).await;
            let me = keys.public_key();
            let r = match ad.ad() {
                Some(ad) => follow::free_for(&client, relays, ad, &me, &budget).await,
                None => None,
            };
            relays::shutdown(&client).await;
            r
        });
        if let Some(r) = reason {
            ctx.say(format!("no payment needed: {r}"));
            return Ok(None);
        }
    }
    token(a)
}

fn idempotency_key(a: &RerunArgs) -> Result<Option<String>> {
    let key = a
        .idempotency_key
        .clone()
        .or_else(|| std::env::var(ENV_IDEMPOTENCY_KEY).ok())
        .filter(|k| !k.trim().is_empty());
    if let Some(k) = &key {
        if k.len() > 256 {
            return Err(Error::input(
                "--idempotency-key is longer than 256 characters",
            ));
        }
    }
    Ok(key)
}

/// Find a past job: in the journal, else on the relays.
fn load_base(
    ctx: &Ctx,
    cfg: &Config,
    journal: Option<&Journal>,
    job: &str,
    relays: &[RelayUrl],
) -> Result<Base> {
    let r = JobRef::parse(job).map_err(Error::input)?;
    let event = match journal.map(|j| j.get(&r.id)).transpose()?.flatten() {
        Some(rec) => rec.signed_event()?,
        None => {
            let mut urls = relays.to_vec();
            urls.extend(r.relays.iter().filter(|u| !relays.contains(u)).cloned());
            if urls.is_empty() {
                return Err(Error::input(format!(
                    "job {} is not in the journal and no relays are configured to look for it",
                    r.id
                )));
            }
            let key = ctx.optional_key(cfg)?;
            let rt = runtime()?;
            // Half of the command's deadline: the publish needs the rest.
            let deadline = ctx.deadline();
            let (trackers, reach) = rt.block_on(async {
                let client = relays::reader(key.as_ref().map(|k| &k.keys), &urls, false).await;
                let t = follow::load_jobs_settling(
                    &client,
                    &urls,
                    &[r.id],
                    deadline.share(2),
                    follow::SETTLE_GRACE,
                )
                .await;
                relays::shutdown(&client).await;
                t
            });
            let found = trackers.into_iter().next().and_then(|t| t.request);
            match found {
                Some(ev) => ev,
                None if !reach.complete() => {
                    return Err(follow::reach_error(
                        &reach,
                        deadline.total(),
                        &format!("looking up job {}", r.id),
                    ))
                }
                None => {
                    return Err(Error::Runtime(format!(
                        "job {} not found in the journal or on {} relay(s)",
                        r.id,
                        urls.len()
                    )))
                }
            }
        }
    };
    let req = JobRequest::from_event(&event)
        .ok_or_else(|| Error::input(format!("event {} is not a job request", r.id)))?;
    Ok(Base {
        req,
        author: event.pubkey,
        id: event.id,
    })
}

pub fn rerun(ctx: &Ctx, a: RerunArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let relays = relays_for(&cfg, &a.relays)?;
    // One deadline for the whole command: lookups, mint calls, publish.
    let deadline = ctx.start_deadline(a.timeout.as_deref(), cfg.publish_timeout)?;
    let timeout = deadline.total();
    let min_accept = min_accept_for(a.min_accept, &cfg)?;
    if !a.dry_run {
        require_relays(&relays)?;
        if min_accept > relays.len() {
            return Err(Error::input(format!(
                "--min-accept {min_accept} is more than the {} relay(s) configured",
                relays.len()
            )));
        }
    }
    if let Some(file) = &a.batch {
        return batch(ctx, &cfg, &a, file, &relays, timeout, min_accept);
    }
    let idem = idempotency_key(&a)?;
    // Concurrent runs with one idempotency key queue here (a lock file
    // next to the journal, released by the kernel if this process dies):
    // the first journals the job, the later ones find it below.
    let journal_path = ctx.settings.journal_path.clone();
    let key_lock = match (&idem, a.dry_run) {
        (Some(_), false) => Some(jobctl::journal::lock(
            &journal_path,
            jobctl::wallet::LOCK_WAIT,
        )?),
        _ => None,
    };
    // Look things up in an existing journal; create one only once every
    // input is known good and a job is about to be recorded.
    let journal = ctx.existing_journal()?;
    let base = match &a.job {
        Some(j) => Some(load_base(ctx, &cfg, journal.as_ref(), j, &relays)?),
        None => None,
    };
    let mut spec = job_spec(&cfg, &a, base.as_ref())?;
    if let Some(input) = job_input(&a)? {
        spec.content = input;
    }
    let key = ctx.key(&cfg)?;
    tracing::info!(key = ?key, "signing key");

    // A known idempotency key: sign nothing, spend nothing, heal the publish.
    if let (Some(k), Some(j), false) = (&idem, journal.as_ref(), a.dry_run) {
        if let Some(rec) = j.by_idempotency_key(k)? {
            if rec.content_hash != spec.content_hash(&key.keys) {
                return Err(Error::input(format!(
                    "idempotency key `{k}` already names job {} with different content",
                    rec.id
                )));
            }
            if a.token.is_some() || env_token().is_some() {
                render::print_warning(&format!(
                    "job {} already exists for this idempotency key; the token given was not used",
                    render::short_id(&rec.id)
                ));
            }
            let event = rec.signed_event()?;
            let payment = rec
                .token
                .as_deref()
                .and_then(|t| PaymentToken::parse(t).ok())
                .map(|t| t.info().clone());
            let mut journal = journal.ok_or_else(|| Error::Journal("not open".into()))?;
            if !a.json {
                ctx.say(format!(
                    "idempotency key `{k}`: job {} exists; republishing to relays that have not accepted it",
                    render::short_id(&rec.id)
                ));
            }
            let rt = runtime()?;
            let report = rt.block_on(async {
                let client = relays::client(&key.keys, &relays).await;
                let r = dispatch::publish_journaled(
                    &mut journal,
                    &client,
                    event,
                    payment,
                    &relays,
                    deadline.remaining(),
                    min_accept,
                )
                .await;
                relays::shutdown(&client).await;
                r
            })?;
            return print_report(ctx, &report, a.json);
        }
    }

    if a.dry_run && a.amount.is_some() {
        return Err(Error::input(
            "--dry-run cannot be combined with --amount: making the token takes money out of the wallet",
        ));
    }
    let given = if a.amount.is_some() {
        None
    } else {
        token_or_free(ctx, &a, spec.worker, &key.keys, &relays)?
    };
    // Paying from the wallet: hold the wallet's lock from making the token
    // until the job carrying it is journaled, so no other process takes a
    // token back that is about to be journaled; record the token in the
    // journal before the mint is even asked.
    let spends = !a.dry_run && (a.amount.is_some() || a.lock);
    // Taken by `payment` right before the wallet makes the token.
    let mut wallet_lock = None;
    let mut journal = match journal {
        None if spends => Some(ctx.journal()?),
        j => j,
    };
    spec.token = if a.dry_run {
        given
    } else {
        runtime()?.block_on(super::pay::payment(
            ctx,
            &cfg,
            &a,
            spec.worker,
            &key,
            &relays,
            given,
            journal.as_mut(),
            &mut wallet_lock,
        ))?
    };
    let req = dispatch::build(&spec, &key.keys)?;
    let event = dispatch::sign(&req, &key.keys)?;
    if a.dry_run {
        ctx.say(format!(
            "dry run: signed job {} not published ({})",
            event.id,
            payment_summary(&spec)
        ));
        ctx.print(&event.as_json())?;
        return Ok(exit::OK);
    }
    let mut journal = match journal {
        Some(j) => j,
        None => ctx.journal()?,
    };
    if !a.json {
        ctx.say(format!(
            "dispatching `{}` to worker {} with {} via {} relay(s){}",
            command_line(&spec),
            npub(&spec.worker),
            payment_summary(&spec),
            relays.len(),
            base.as_ref()
                .map(|b| format!(" (rerun of {})", render::short_id(&b.id.to_hex())))
                .unwrap_or_default()
        ));
    }
    // Journaled (and the wallet's token with it) before anything is
    // published; then the wallet is free for others.
    dispatch::journal_new(
        &mut journal,
        &key.keys,
        &spec,
        &event,
        &relays,
        idem.as_deref(),
        base.as_ref().map(|b| b.id),
    )?;
    drop(wallet_lock);
    let payment = spec.token.as_ref().map(|t| t.info().clone());
    let rt = runtime()?;
    let report = rt.block_on(async {
        let client = relays::client(&key.keys, &relays).await;
        let r = dispatch::publish_journaled(
            &mut journal,
            &client,
            event,
            payment,
            &relays,
            deadline.remaining(),
            min_accept,
        )
        .await;
        relays::shutdown(&client).await;
        r
    })?;
    drop(key_lock);
    print_report(ctx, &report, a.json)
}

/// Print a dispatch report: JSON, or the table, summary and id.
fn print_report(ctx: &Ctx, report: &DispatchReport, json: bool) -> Result<i32> {
    let color = render::stderr_color();
    if json {
        ctx.print(&to_json(report)?)?;
    } else {
        if ctx.quiet && !report.ok() {
            render::print_error(&format!(
                "job {} accepted by {}/{} relays (need {}): {}",
                render::short_id(&report.id),
                report.accepted,
                report.relays.len(),
                report.min_accept,
                relays::failure_summary(&report.relays)
            ));
        }
        ctx.say(render::relay_table(&report.relays, color));
        let verdict = if report.ok() {
            render::paint("published", color, "32")
        } else {
            render::paint("NOT published", color, "1;31")
        };
        ctx.say(format!(
            "{verdict}: job {} accepted by {}/{} relays (need {})",
            render::short_id(&report.id),
            report.accepted,
            report.relays.len(),
            report.min_accept
        ));
        if !report.ok() {
            ctx.say(format!(
                "why: {}",
                render::one_line(&relays::failure_summary(&report.relays))
            ));
            ctx.say(
                "the job and its token are kept in the journal: `jobctl republish --all` retries",
            );
        }
        ctx.print(&report.id)?;
    }
    Ok(if report.ok() { exit::OK } else { exit::FAILURE })
}

/// The command for display (a rerun's may come from a relay: sanitized).
fn command_line(spec: &JobSpec) -> String {
    render::sanitize(
        &std::iter::once(spec.cmd.as_str())
            .chain(spec.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn payment_summary(spec: &JobSpec) -> String {
    match &spec.token {
        Some(t) => format!("payment {t}"),
        None => "no payment (unpaid)".to_string(),
    }
}

/// Whether a batch line carries a token (for the "not used" warning).
fn l_has_token(raw: &str) -> bool {
    serde_json::from_str::<BatchLine>(raw).is_ok_and(|l| l.token.is_some())
}

/// One line of a batch file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchLine {
    worker: Option<String>,
    cmd: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    secrets: Option<BTreeMap<String, String>>,
    token: Option<String>,
    unpaid: Option<bool>,
    idempotency_key: Option<String>,
    p: Option<String>,
    run: Option<String>,
}

/// A validated batch entry.
struct Planned {
    line: usize,
    spec: JobSpec,
    idem: Option<String>,
    /// An existing job for this idempotency key.
    existing: Option<Event>,
}

fn plan_line(
    cfg: &Config,
    a: &RerunArgs,
    n: usize,
    text: &str,
) -> Result<(JobSpec, Option<String>)> {
    let l: BatchLine = serde_json::from_str(text).map_err(|e| {
        Error::input(format!(
            "not a job spec: {}",
            render::one_line(&e.to_string())
        ))
    })?;
    // The same rules as the flags: a key holding `=` would otherwise be
    // split differently once written as KEY=VALUE.
    for (what, map) in [("env", &l.env), ("secrets", &l.secrets)] {
        for (k, v) in map.iter().flatten() {
            validate_env_key(k).map_err(|e| Error::input(format!("{what}: {e}")))?;
            check_text(&format!("{what} {k}"), v).map_err(Error::input)?;
        }
    }
    if l.unpaid == Some(true) && l.token.is_some() {
        return Err(Error::input(
            "\"unpaid\": true and \"token\" cannot be combined (as --unpaid and --token)",
        ));
    }
    if l.idempotency_key.as_ref().is_some_and(|k| k.len() > 256) {
        return Err(Error::input(
            "idempotency_key is longer than 256 characters",
        ));
    }
    for (what, v) in [
        ("worker", &l.worker),
        ("p", &l.p),
        ("run", &l.run),
        ("token", &l.token),
        ("idempotency_key", &l.idempotency_key),
    ] {
        if let Some(v) = v {
            check_text(what, v).map_err(Error::input)?;
        }
    }
    let args = RerunArgs {
        job: None,
        batch: None,
        concurrency: a.concurrency,
        idempotency_key: l.idempotency_key.clone(),
        token: l.token.clone(),
        unpaid: l.unpaid.unwrap_or(false),
        worker: l.worker.clone().or_else(|| a.worker.clone()),
        relays: vec![],
        cmd: l.cmd.clone().or_else(|| a.cmd.clone()),
        // Flags are defaults: the line's own values come last and win.
        env: a
            .env
            .iter()
            .cloned()
            .chain(l.env.iter().flatten().map(|(k, v)| format!("{k}={v}")))
            .collect(),
        secrets: l
            .secrets
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        run: l.run.clone().or_else(|| a.run.clone()),
        p_tag: l.p.clone().or_else(|| a.p_tag.clone()),
        timeout: None,
        min_accept: None,
        dry_run: false,
        json: false,
        args: l.args.clone().unwrap_or_else(|| a.args.clone()),
        amount: None,
        mint: None,
        max_price: None,
        duration: None,
        lock: false,
        refund_after: a.refund_after.clone(),
        no_check: true,
        require_check: false,
        strict: false,
        token_format: None,
        stdin: None,
    };
    let _ = n;
    let mut spec = job_spec(cfg, &args, None)?;
    if !args.unpaid {
        let raw = l.token.as_deref().ok_or_else(|| {
            Error::input("no token: give \"token\" or \"unpaid\": true (batch lines do not read $JOBCTL_TOKEN)")
        })?;
        spec.token = Some(PaymentToken::parse(raw)?);
    }
    Ok((spec, l.idempotency_key.filter(|k| !k.trim().is_empty())))
}

fn batch(
    ctx: &Ctx,
    cfg: &Config,
    a: &RerunArgs,
    file: &str,
    relays: &[RelayUrl],
    timeout: std::time::Duration,
    min_accept: usize,
) -> Result<i32> {
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
    let text = if file == "-" {
        read_stdin("the batch")?
    } else {
        std::fs::read_to_string(file).map_err(|e| Error::input(format!("--batch {file}: {e}")))?
    };
    let key = ctx.key(cfg)?;
    let existing_journal = ctx.existing_journal()?;
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    let mut seen_keys = std::collections::HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        match plan_line(cfg, a, n, raw) {
            Ok((spec, idem)) => {
                let mut existing = None;
                if let Some(k) = &idem {
                    if !seen_keys.insert(k.clone()) {
                        errors.push(format!(
                            "line {n}: idempotency key `{k}` appears twice in the batch"
                        ));
                        continue;
                    }
                    let found = match &existing_journal {
                        Some(j) => j.by_idempotency_key(k)?,
                        None => None,
                    };
                    if let Some(rec) = found {
                        if rec.content_hash != spec.content_hash(&key.keys) {
                            errors.push(format!(
                                "line {n}: idempotency key `{k}` already names job {} with different content",
                                rec.id
                            ));
                            continue;
                        }
                        if l_has_token(raw) {
                            render::print_warning(&format!(
                                "line {n}: job {} already exists for idempotency key `{k}`; its token was not used",
                                render::short_id(&rec.id)
                            ));
                        }
                        existing = Some(rec.signed_event()?);
                    }
                }
                plans.push(Planned {
                    line: n,
                    spec,
                    idem,
                    existing,
                });
            }
            Err(e) => errors.push(format!("line {n}: {e}")),
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            render::print_error(e);
        }
        return Err(Error::input(format!(
            "{} bad line(s) in the batch; nothing was signed or published",
            errors.len()
        )));
    }
    if plans.is_empty() {
        return Err(Error::input("the batch holds no jobs"));
    }
    let mut journal = match existing_journal {
        Some(j) => j,
        None => ctx.journal()?,
    };
    // Sign every new job and journal them all in one transaction before
    // the first publish.
    let mut events = Vec::with_capacity(plans.len());
    for p in &plans {
        let ev = match &p.existing {
            Some(e) => e.clone(),
            None => dispatch::sign(&dispatch::build(&p.spec, &key.keys)?, &key.keys)?,
        };
        events.push(ev);
    }
    let hashes: Vec<String> = plans
        .iter()
        .map(|p| p.spec.content_hash(&key.keys))
        .collect();
    let infos: Vec<Option<jobctl::payment::TokenInfo>> = plans
        .iter()
        .map(|p| p.spec.token.as_ref().map(|t| t.info().clone()))
        .collect();
    let fresh: Vec<jobctl::journal::NewJob<'_>> = plans
        .iter()
        .zip(&events)
        .zip(hashes.iter().zip(&infos))
        .filter(|((p, _), _)| p.existing.is_none())
        .map(|((p, e), (h, info))| {
            dispatch::new_job(
                &p.spec,
                e,
                info.as_ref(),
                relays,
                p.idem.as_deref(),
                h,
                None,
            )
        })
        .collect();
    journal.record_dispatches(&fresh)?;
    drop(fresh);
    if !a.json {
        ctx.say(format!(
            "dispatching {} job(s) via {} relay(s), {} at a time",
            plans.len(),
            relays.len(),
            a.concurrency
        ));
    }

    let rt = runtime()?;
    let reports: Vec<DispatchReport> = rt.block_on(async {
        let client = relays::client(&key.keys, relays).await;
        // The whole batch shares the command's deadline (`timeout` is its total).
        let deadline = ctx.deadline();
        let _ = timeout;
        relays::connect_all(&client, relays, deadline.share(2)).await;
        // Relays each job already reached (idempotent retries).
        let earlier: Vec<Vec<String>> = events
            .iter()
            .map(|e| journal.accepted_relays(&e.id).unwrap_or_default())
            .collect();
        let client_ref = &client;
        let mut stream =
            futures::stream::iter(events.iter().cloned().enumerate().map(|(i, ev)| {
                let todo: Vec<RelayUrl> = relays
                    .iter()
                    .filter(|u| !earlier[i].contains(&u.to_string()))
                    .cloned()
                    .collect();
                async move {
                    let out = if todo.is_empty() {
                        Vec::new()
                    } else {
                        relays::publish_with(client_ref, &ev, &todo, deadline.remaining()).await
                    };
                    (i, ev, out)
                }
            }))
            .buffer_unordered(a.concurrency);
        let mut reports: Vec<Option<DispatchReport>> = vec![None; events.len()];
        let mut pending: Vec<(EventId, Vec<relays::RelayOutcome>)> = Vec::new();
        while let Some((i, ev, out)) = stream.next().await {
            pending.push((ev.id, out.clone()));
            if pending.len() >= 100 {
                if let Err(e) = journal.record_outcomes_many(&pending) {
                    render::print_warning(&e.to_string());
                }
                pending.clear();
            }
            let mut all: Vec<relays::RelayOutcome> = earlier[i]
                .iter()
                .map(|u| relays::RelayOutcome {
                    url: u.clone(),
                    status: relays::RelayStatus::Accepted,
                    message: "accepted earlier".into(),
                    latency_ms: 0,
                })
                .collect();
            all.extend(out);
            reports[i] = Some(dispatch::report(ev, infos[i].clone(), all, min_accept));
        }
        if let Err(e) = journal.record_outcomes_many(&pending) {
            render::print_warning(&e.to_string());
        }
        client.shutdown().await;
        reports.into_iter().flatten().collect()
    });

    let color = render::stderr_color();
    let mut table = render::table(&["line", "job", "accepted", "result"], color);
    let mut ok_count = 0;
    for (p, r) in plans.iter().zip(&reports) {
        if a.json {
            let v = serde_json::json!({
                "line": p.line, "id": r.id, "accepted": r.accepted, "ok": r.ok(),
                "idempotent": p.existing.is_some(), "relays": r.relays,
            });
            ctx.print(&v.to_string())?;
        } else {
            ctx.print(&r.id)?;
        }
        if r.ok() {
            ok_count += 1;
        }
        table.add_row(vec![
            p.line.to_string(),
            render::short_id(&r.id),
            format!("{}/{}", r.accepted, r.relays.len()),
            if r.ok() {
                "published".into()
            } else {
                "NOT published".into()
            },
        ]);
    }
    if !a.json {
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
            render::print_error(&format!(
                "{} job(s) did not reach {min_accept} relay(s)",
                reports.len() - ok_count
            ));
        }
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// A past job to run again (hex, note1, nevent1; from the journal or the
    /// relays): same worker, cmd, args, env and parent, with a fresh token.
    /// Flags given as well override the original's values.
    #[arg(value_name = "JOB", conflicts_with = "batch")]
    pub job: Option<String>,

    /// Dispatch many jobs from an NDJSON file (`-` for stdin), one job spec
    /// per line: {"worker", "cmd", "args", "env", "secrets", "token",
    /// "unpaid", "idempotency_key", "p", "run"}. --worker, --cmd, --env,
    /// --run, --p and ARGS give defaults that a line's own values override.
    #[arg(long, value_name = "FILE")]
    pub batch: Option<String>,

    /// Jobs published at once with --batch.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub concurrency: usize,

    /// Make retries safe: the first call with this key dispatches; later
    /// calls sign nothing new, spend no token, print the same id and
    /// republish to relays that have not accepted it yet. [env: JOBCTL_IDEMPOTENCY_KEY]
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,

    /// Cashu token paying for the job (cashuA... or cashuB...); `-` reads it
    /// from stdin. Prefer $JOBCTL_TOKEN or stdin: argv is visible to other users.
    /// [env: JOBCTL_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Send the job without a payment tag (for free workers that allow you);
    /// $JOBCTL_TOKEN is then ignored.
    #[arg(long, conflicts_with_all = ["token", "amount"])]
    pub unpaid: bool,

    /// Pay this many sat from the local wallet (a fresh token is made).
    #[arg(long, value_name = "SAT", conflicts_with = "token")]
    pub amount: Option<u64>,

    /// How a token the wallet makes (--amount, --lock) is written: `cashuA`
    /// (V3 with full keyset ids, which every client decodes offline) or
    /// `cashuB` (V4) [default: config `token_format`, else cashuA]. A token
    /// you pass is published as given.
    #[arg(long, value_name = "cashuA|cashuB", value_parser = |s: &str| s.parse::<jobctl::wallet::TokenFormat>())]
    pub token_format: Option<jobctl::wallet::TokenFormat>,

    /// The job's input, put in the request's content (read by the worker
    /// as the command's stdin); `-` reads stdin. At most 64 KiB; cannot be
    /// combined with `--token -`.
    #[arg(long = "stdin", value_name = "FILE|-")]
    pub stdin: Option<String>,

    /// Mint to pay from with --amount [default: one the worker accepts
    /// (its advertisement) that holds enough balance].
    #[arg(long, value_name = "URL", requires = "amount", value_parser = jobctl::payment::parse_mint_url)]
    pub mint: Option<String>,

    /// Refuse when the worker's advertised rate times --duration exceeds this (sat).
    #[arg(long, value_name = "SAT")]
    pub max_price: Option<u64>,

    /// Expected run time in seconds, for --max-price [default: the worker's
    /// min_duration, else 60].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,

    /// Lock the payment to the worker's key (NUT-11 P2PK); after
    /// --refund-after your own key can take it back.
    #[arg(long, conflicts_with = "unpaid")]
    pub lock: bool,

    /// Locktime of a --lock payment, e.g. 72h.
    #[arg(long, value_name = "DURATION", default_value = "72h")]
    pub refund_after: String,

    /// Skip the pre-flight NUT-07 check of --token with its mint (offline use).
    #[arg(long, conflicts_with = "require_check")]
    pub no_check: bool,

    /// Fail (instead of warning) when the token's mint cannot be reached for the check.
    #[arg(long)]
    pub require_check: bool,

    /// Fail (instead of warning) when the worker's advertisement does not list the token's mint.
    #[arg(long)]
    pub strict: bool,

    /// Worker pubkey (npub or hex) [default: config `worker` or $JOBCTL_WORKER].
    #[arg(long, value_name = "PUBKEY")]
    pub worker: Option<String>,

    /// Relay URL; repeat for several. Replaces the configured list and $JOBCTL_RELAYS.
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Command the worker runs [default: config `cmd`, else `act`].
    #[arg(long, value_name = "CMD")]
    pub cmd: Option<String>,

    /// Plain environment variable for the job; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Secret environment variable, NIP-44 encrypted to the worker; repeatable.
    /// `--secret KEY` alone takes the value from your own environment.
    #[arg(long = "secret", value_name = "KEY[=VALUE]")]
    pub secrets: Vec<String>,

    /// Parent event id (e.g. a 5401 workflow run), sent as the `e` tag.
    #[arg(long, value_name = "EVENT_ID")]
    pub run: Option<String>,

    /// Who the `p` tag addresses: `worker` (default), `self`, or a pubkey.
    #[arg(long = "p", value_name = "worker|self|PUBKEY")]
    pub p_tag: Option<String>,

    /// Bound on the whole command: looking up a past job or the worker's
    /// advertisement, mint calls and the publish, e.g. 10s, 500ms
    /// [default: config timeouts.publish, else 10s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Relays that must accept for exit 0 [default: config, else 1].
    #[arg(long, value_name = "N")]
    pub min_accept: Option<usize>,

    /// Print the signed event JSON on stdout and publish nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON object on stdout instead of the event id.
    #[arg(long)]
    pub json: bool,

    /// Arguments for the command, after `--`; all go in one `args` tag
    /// [default: config `args`].
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}
