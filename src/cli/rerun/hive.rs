//! `rerun RUN` (Budabit's Re-run of a Hive CI workflow run, kind 5401)
//! and `rerun --repo --workflow` (a fresh run): the binary's side. Every
//! input is checked before anything is uploaded or published; then the
//! 5401 goes out, and only once enough relays took it is the payment
//! made, journaled with the 5100 and the 5100 published
//! ([`jobctl::hive::start`]). A known idempotency key republishes its
//! journaled job instead.

use jobctl::config;
use jobctl::error::{exit, Error, Result};
use jobctl::hive::exec::{self, Exec, FreshRun, RunPlan};
use jobctl::hive::start::{self, JobTarget};
use jobctl::hive::RepoRef;
use jobctl::journal::{JobRecord, Journal};
use jobctl::keys::SigningKey;
use jobctl::outbox;
use jobctl::protocol::JobRef;
use jobctl::protocol::{JobRequest, KIND_WORKFLOW_RUN};
use jobctl::relays;
use jobctl::request::{self, Base};
use nostr_sdk::prelude::*;

use super::report::{command_line, dispatching_line, print_report_of};
use super::{runtime, Rerun};
use crate::cli::render;

/// What `rerun ID` names.
pub(super) enum Target {
    /// A job (or no id at all): the usual rerun.
    Job(Option<Box<Base>>),
    /// A workflow run (kind 5401).
    Run(EventId),
}

impl Rerun<'_> {
    /// A journaled id is a job; else the relays say what kind it is: a
    /// 5401 is a run, a job request is loaded as before, and anything
    /// else (or nothing) goes the job way for the usual errors.
    pub(super) fn target(&self, journal: Option<&Journal>) -> Result<Target> {
        let Some(id) = &self.a.job else {
            return Ok(Target::Job(None));
        };
        let Ok(r) = JobRef::parse(id) else {
            return self.job(journal);
        };
        let known = journal.map(|j| j.get(&r.id)).transpose()?.flatten();
        if known.is_some() || self.relays.is_empty() {
            return self.job(journal);
        }
        let urls = jobctl::hive::repo::merge_relays(&self.relays, &r.relays);
        let key = self.ctx.settings.optional_key()?;
        let probe = start::probe(
            key.as_ref().map(|k| &k.keys),
            &urls,
            r.id,
            self.deadline.share(3),
        );
        match runtime()?.block_on(probe) {
            Some(ev) if ev.kind == Kind::Custom(KIND_WORKFLOW_RUN) => Ok(Target::Run(ev.id)),
            Some(ev) if JobRequest::from_event(&ev).is_some() => {
                Base::from_event(&ev).map(|b| Target::Job(Some(Box::new(b))))
            }
            _ => self.job(journal),
        }
    }

    fn job(&self, journal: Option<&Journal>) -> Result<Target> {
        self.base(journal).map(|b| Target::Job(b.map(Box::new)))
    }
}

/// Flags that shape a job by hand, which a workflow run's job ignores.
fn refuse_job_flags(d: &Rerun<'_>) -> Result<()> {
    let a = d.a;
    let given = [
        ("--cmd", a.cmd.is_some()),
        ("--env", !a.env.is_empty()),
        ("--run", a.run.is_some()),
        ("--p", a.p_tag.is_some()),
        ("--stdin", a.stdin.is_some()),
        ("ARGS", !a.args.is_empty()),
    ];
    match given.iter().find(|(_, g)| *g) {
        Some((flag, _)) => Err(Error::input(format!(
            "{flag} does not apply to a workflow run: its job is built as Budabit builds it"
        ))),
        None => Ok(()),
    }
}

fn worker_flag(w: &str) -> Result<PublicKey> {
    config::parse_pubkey(w).map_err(|e| Error::input(format!("--worker: {e}")))
}

fn blossom_flag(b: Option<&String>) -> Result<Option<String>> {
    b.map(|b| config::parse_blossom(b).map_err(|e| Error::input(format!("--blossom: {e}"))))
        .transpose()
}

fn secrets(d: &Rerun<'_>) -> Result<Vec<(String, String)>> {
    d.a.secrets
        .iter()
        .map(|s| request::secret_value(s))
        .collect()
}

/// `rerun RUN`: Budabit's Re-run.
pub(super) fn rerun_run(
    d: &Rerun<'_>,
    id: EventId,
    journal: Option<Journal>,
    idem: Option<&str>,
) -> Result<i32> {
    refuse_job_flags(d)?;
    let worker = d.a.worker.as_deref().map(worker_flag).transpose()?;
    let blossom = blossom_flag(d.a.blossom.as_ref())?;
    let secrets = secrets(d)?;
    let key = d.ctx.key(d.cfg)?;
    if let Some(rec) = known_key(d, idem, journal.as_ref())? {
        return heal(d, rec, journal, &key);
    }
    let rt = runtime()?;
    let keys = Some(&key.keys);
    let l = rt.block_on(start::load_run(keys, &d.relays, id, &d.deadline))?;
    let repo = &l.run.run.repo;
    let (_, urls) = rt.block_on(start::repo_relays(keys, &d.relays, repo, &d.deadline));
    drop(rt);
    // What the old job did not say (a job not built by jobctl or
    // Budabit), the re-run takes from here: the runner must report.
    let report_to = exec::old_env(&l.job, exec::env::RELAYS)
        .is_none()
        .then(|| urls.clone());
    let blossom = blossom.or_else(|| {
        exec::old_env(&l.job, exec::env::BLOSSOM_SERVER)
            .is_none()
            .then(|| d.cfg.blossom.clone())
            .flatten()
    });
    let x = exec::rerun_exec(&l.job, worker, report_to, blossom, None)?;
    let plan = exec::plan_rerun(&key.keys, &l.run, &l.job, &x, secrets, d.ctx.now())?;
    launch(d, plan, &urls, journal, &key, idem, Some(l.job_id))
}

/// A fresh run's inputs, every one checked before anything goes out.
struct FreshInputs {
    repo: RepoRef,
    workflow: String,
    worker: PublicKey,
    blossom: String,
    script: Option<Vec<u8>>,
    secrets: Vec<(String, String)>,
}

fn fresh_inputs(d: &Rerun<'_>) -> Result<FreshInputs> {
    refuse_job_flags(d)?;
    let a = d.a;
    let repo = RepoRef::parse(a.repo.as_deref().unwrap_or_default())
        .map_err(|e| Error::input(format!("--repo: {e}")))?;
    let workflow = a.workflow.clone().unwrap_or_default();
    if workflow.trim().is_empty() {
        return Err(Error::input("--workflow must not be empty"));
    }
    let worker = match a.worker.as_deref() {
        Some(w) => worker_flag(w)?,
        None => d.cfg.worker.ok_or_else(|| {
            Error::input(
                "no worker: pass --worker, set JOBCTL_WORKER, or set `worker` in the config",
            )
        })?,
    };
    let blossom = blossom_flag(a.blossom.as_ref())?
        .or_else(|| d.cfg.blossom.clone())
        .ok_or_else(|| {
            Error::input(
                "no Blossom server for the runner script: pass --blossom URL or set `blossom` in the config",
            )
        })?;
    let script = match &a.script {
        Some(f) => Some(std::fs::read(f).map_err(|e| Error::input(format!("--script {f}: {e}")))?),
        None => None,
    };
    let secrets = secrets(d)?;
    Ok(FreshInputs {
        repo,
        workflow,
        worker,
        blossom,
        script,
        secrets,
    })
}

/// `rerun --repo REPO --workflow PATH`: Budabit's New run.
pub(super) fn fresh(d: &Rerun<'_>, journal: Option<Journal>, idem: Option<&str>) -> Result<i32> {
    let i = fresh_inputs(d)?;
    let key = d.ctx.key(d.cfg)?;
    if let Some(rec) = known_key(d, idem, journal.as_ref())? {
        return heal(d, rec, journal, &key);
    }
    let rt = runtime()?;
    let lookup = start::repo_relays(Some(&key.keys), &d.relays, &i.repo, &d.deadline);
    let (ann, urls) = rt.block_on(lookup);
    if ann.is_none() {
        d.ctx.warn(&format!(
            "no announcement (kind 30617) of {} found: Budabit will not list this run until the repository is announced",
            i.repo.coordinate()
        ));
    }
    let runner_url = if d.a.dry_run {
        let body = i
            .script
            .unwrap_or_else(|| exec::RUNNER_SCRIPT.as_bytes().to_vec());
        format!("{}/{}", i.blossom, jobctl::logs::sha256_hex(&body))
    } else {
        rt.block_on(start::upload_runner(
            &i.blossom,
            &key.keys,
            i.script,
            &d.deadline,
        ))?
    };
    drop(rt);
    let run = FreshRun {
        repo: i.repo,
        workflow: i.workflow,
        branch: d.a.branch.clone().unwrap_or_else(|| "main".into()),
        commit: d.a.commit.clone().unwrap_or_default(),
        runner_url,
    };
    let x = Exec {
        worker: i.worker,
        relays: urls.clone(),
        blossom: i.blossom,
        token: None,
    };
    let mut plan = exec::plan_fresh(&key.keys, &run, &x, d.ctx.now())?;
    let more = i.secrets.into_iter().filter(|(k, _)| !exec::is_hive_var(k));
    plan.job.secrets.splice(0..0, more);
    launch(d, plan, &urls, journal, &key, idem, None)
}

/// The journaled job of a known idempotency key.
fn known_key(d: &Rerun<'_>, idem: Option<&str>, j: Option<&Journal>) -> Result<Option<JobRecord>> {
    match (idem, j, d.a.dry_run) {
        (Some(k), Some(j), false) => j.by_idempotency_key(k),
        _ => Ok(None),
    }
}

/// A known idempotency key: sign nothing, spend nothing, republish its
/// job to the relays it was meant for (its run went out before it).
fn heal(d: &Rerun<'_>, rec: JobRecord, journal: Option<Journal>, key: &SigningKey) -> Result<i32> {
    if d.a.token.is_some() || request::env_token().is_some() || d.a.amount.is_some() {
        d.ctx.warn(&format!(
            "job {} already exists for this idempotency key; no new payment was made",
            render::short_id(&rec.id)
        ));
    }
    let event = rec.signed_event()?;
    // The key must name a workflow run's job (its `e` = its HIVE_CI_RUN_ID).
    let run = JobRequest::from_event(&event)
        .and_then(|j| {
            let p = j.parent?;
            (exec::old_env(&j, exec::env::RUN_ID) == Some(p.to_hex().as_str())).then_some(p)
        })
        .map(|p| p.to_hex())
        .ok_or_else(|| {
            Error::input(format!(
                "idempotency key already names job {}, which is not a workflow run's job",
                rec.id
            ))
        })?;
    let urls = config::parse_relays(rec.relays.iter().map(String::as_str))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| d.relays.clone());
    let mut journal = journal.ok_or_else(|| Error::Journal("not open".into()))?;
    if !d.a.json {
        d.ctx.say(format!(
            "idempotency key: job {} exists; republishing to relays that have not accepted it",
            render::short_id(&rec.id)
        ));
    }
    let report = runtime()?.block_on(jobctl::dispatch::publish_journaled_as(
        &mut journal,
        &key.keys,
        event,
        jobctl::dispatch::journaled_payment(&rec),
        &urls,
        d.deadline.remaining(),
        d.min_accept,
    ))?;
    print_report_of(d.ctx, &report, d.a.json, Some(&run))
}

/// Publish the run; once enough relays took it, pay, journal the job
/// with its token and publish it.
fn launch(
    d: &Rerun<'_>,
    mut plan: RunPlan,
    urls: &[RelayUrl],
    mut journal: Option<Journal>,
    key: &SigningKey,
    idem: Option<&str>,
    rerun_of: Option<EventId>,
) -> Result<i32> {
    let run_id = plan.run_event.id.to_hex();
    if d.a.dry_run {
        if d.a.amount.is_some() {
            return Err(Error::input(
                "--dry-run cannot be combined with --amount: making the token takes money out of the wallet",
            ));
        }
        return dry_run(d, &plan, key);
    }
    if !d.a.json {
        d.ctx.say(format!(
            "starting workflow run {} ({}) via {} relay(s)",
            render::short_id(&run_id),
            render::sanitize(&plan_workflow(&plan)),
            urls.len()
        ));
    }
    let rt = runtime()?;
    rt.block_on(start::send_run(
        &key.keys,
        &plan,
        urls,
        &d.deadline,
        d.min_accept,
    ))?;
    // One pool for the payment's lookups, the relay list and the job.
    let client = rt.block_on(relays::one_job(&key.keys, urls));
    let paid = pay_run_job(d, &rt, &client, &mut plan, key, &mut journal);
    let wallet_lock = match paid {
        Ok(lock) => lock,
        Err(e) => {
            rt.block_on(relays::shutdown(&client));
            return Err(e);
        }
    };
    let mut journal = match journal {
        Some(j) => j,
        None => d.ctx.journal()?,
    };
    // The job goes to the worker's inbox relays too (NIP-65), as in rerun.
    let route = routed(d, &rt, &journal, &client, urls, plan.job.worker);
    let targets = outbox::targets(urls, &route);
    if !d.a.json {
        // The bootstrap that fetches and checks the runner script is long
        // and the same every time: `show` has it in full.
        let line = dispatching_line(&plan.job, urls.len(), route.inbox.len(), None).replacen(
            &command_line(&plan.job),
            "bash -c <fetch, check and run the runner script>",
            1,
        );
        d.ctx.say(line);
    }
    let target = JobTarget {
        journal: &mut journal,
        urls: &targets,
        deadline: &d.deadline,
        min_accept: d.min_accept,
        idempotency_key: idem,
        rerun_of,
    };
    let mut report = rt.block_on(async {
        let r = start::dispatch_job(target, &client, &key.keys, &plan, wallet_lock).await;
        relays::shutdown(&client).await;
        r
    })?;
    outbox::remember(&journal, &plan.job.worker, &route);
    report.worker_inbox = route.inbox.iter().map(|u| u.to_string()).collect();
    print_report_of(d.ctx, &report, d.a.json, Some(&run_id))
}

/// Pay for the run's job (its token set in `plan`); the wallet's lock
/// when the wallet made or locked the token.
fn pay_run_job(
    d: &Rerun<'_>,
    rt: &tokio::runtime::Runtime,
    client: &Client,
    plan: &mut RunPlan,
    key: &SigningKey,
    journal: &mut Option<Journal>,
) -> Result<Option<jobctl::keys::FileLock>> {
    let job = super::NewJob {
        spec: plan.job.clone(),
        base: None,
        key,
        idem: None,
    };
    let (token, wallet_lock) = d.payment(rt, client, &job, journal)?;
    plan.job.token = token;
    Ok(wallet_lock)
}

/// `worker`'s inbox relays (NIP-65: from the journal's cache, else looked
/// up within the deadline; none with `--no-outbox` or `outbox = false`),
/// added to the pool `client`.
fn routed(
    d: &Rerun<'_>,
    rt: &tokio::runtime::Runtime,
    journal: &Journal,
    client: &Client,
    urls: &[RelayUrl],
    worker: PublicKey,
) -> outbox::Route {
    let on = !d.a.no_outbox && d.cfg.outbox;
    let route = rt.block_on(outbox::route(on, journal, client, urls, worker, d.deadline));
    rt.block_on(relays::add_one_job_relays(client, &route.inbox));
    route
}

fn plan_workflow(plan: &RunPlan) -> String {
    jobctl::hive::WorkflowRun::from_event(&plan.run_event)
        .map(|r| format!("{} on {}", r.workflow, r.branch))
        .unwrap_or_default()
}

/// `--dry-run`: the signed run and job, one JSON line each; nothing
/// published, nothing paid.
fn dry_run(d: &Rerun<'_>, plan: &RunPlan, key: &SigningKey) -> Result<i32> {
    let req = jobctl::dispatch::build(&plan.job, &key.keys)?;
    let job = jobctl::dispatch::sign(&req, &key.keys)?;
    d.ctx.say(format!(
        "dry run: signed workflow run {} and its job {} not published",
        plan.run_event.id, job.id
    ));
    d.ctx.print(&plan.run_event.as_json())?;
    d.ctx.print(&job.as_json())?;
    Ok(exit::OK)
}
