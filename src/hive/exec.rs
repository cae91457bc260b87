//! The Loom job that executes a run, built the way Budabit builds it: a
//! kind 5100 with `e` = the run, `bash -c` a bootstrap that fetches the
//! runner script from Blossom and runs it, the `HIVE_CI_*` environment,
//! and the run's throwaway key as secret `HIVE_CI_NSEC` (NIP-44 to the
//! worker). Also the two ways to start a run ([`plan_fresh`],
//! [`plan_rerun`]): each returns the signed 5401 and the [`JobSpec`] of
//! its 5100, which the caller dispatches like any job (journal, payment).

use nostr_sdk::prelude::*;

use super::repo::RepoRef;
use super::run::{RunEvent, WorkflowRun, TRIGGER_MANUAL};
use crate::dispatch::JobSpec;
use crate::error::{Error, Result};
use crate::payment::PaymentToken;
use crate::protocol::{JobRequest, PTag};

/// The environment a runner script reads.
pub mod env {
    /// Every Hive CI variable starts with this.
    pub const PREFIX: &str = "HIVE_CI_";
    /// The 5401 id (hex).
    pub const RUN_ID: &str = "HIVE_CI_RUN_ID";
    /// The repository as a `nostr://` URL.
    pub const REPOSITORY: &str = "HIVE_CI_REPOSITORY";
    /// The workflow path.
    pub const WORKFLOW: &str = "HIVE_CI_WORKFLOW";
    /// The branch.
    pub const BRANCH: &str = "HIVE_CI_BRANCH";
    /// The commit.
    pub const COMMIT: &str = "HIVE_CI_COMMIT";
    /// Relays for the 5402, comma separated.
    pub const RELAYS: &str = "HIVE_CI_RELAYS";
    /// The Blossom server for the log.
    pub const BLOSSOM_SERVER: &str = "HIVE_CI_BLOSSOM_SERVER";
    /// The throwaway secret key (hex), a NIP-44 secret.
    pub const NSEC: &str = "HIVE_CI_NSEC";
}

/// The built-in runner script (`src/hive/runner.sh`): clone, `act -W`,
/// then `jobctl ci report` uploads the log and publishes the 5402.
pub const RUNNER_SCRIPT: &str = include_str!("runner.sh");

/// Whether a variable is one of Hive CI's own (replaced on every run).
pub fn is_hive_var(name: &str) -> bool {
    name.starts_with(env::PREFIX)
}

/// What the executing job needs besides the run itself.
#[derive(Debug, Clone)]
pub struct Exec {
    /// The worker.
    pub worker: PublicKey,
    /// Where the runner reports (`HIVE_CI_RELAYS`).
    pub relays: Vec<RelayUrl>,
    /// The Blossom server for the log (`HIVE_CI_BLOSSOM_SERVER`).
    pub blossom: String,
    /// Payment, or `None` for an unpaid job.
    pub token: Option<PaymentToken>,
}

/// The `HIVE_CI_*` environment of a run (without the secret).
pub fn hive_env(run_id: &EventId, run: &WorkflowRun, exec: &Exec) -> Vec<(String, String)> {
    let repo = RepoRef {
        relays: exec.relays.clone(),
        ..run.repo.clone()
    };
    let relays: Vec<String> = exec.relays.iter().map(|r| r.to_string()).collect();
    [
        (env::RUN_ID, run_id.to_hex()),
        (env::REPOSITORY, repo.nostr_url()),
        (env::WORKFLOW, run.workflow.clone()),
        (env::BRANCH, run.branch.clone()),
        (env::COMMIT, run.commit.clone()),
        (env::RELAYS, relays.join(",")),
        (env::BLOSSOM_SERVER, exec.blossom.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `bash -c` arguments that download the runner script from `url`,
/// check its sha256 when the URL carries one, and run it.
pub fn bootstrap_args(url: &str) -> Result<Vec<String>> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && !url
            .chars()
            .any(|c| c == '\'' || c == '\\' || c.is_whitespace() || c.is_control());
    if !ok {
        return Err(Error::input(format!(
            "runner script URL `{}` is not a plain http(s) URL",
            crate::text::clip(url, 200)
        )));
    }
    let mut script = format!(
        "set -eu; f=$(mktemp); trap 'rm -f \"$f\"' EXIT; \
         curl -fsSL '{url}' -o \"$f\" || wget -qO \"$f\" '{url}'; "
    );
    if let Some(hash) = crate::logs::blossom_hash(url) {
        script.push_str(&format!(
            "echo '{hash}  '\"$f\" | sha256sum -c - >/dev/null; "
        ));
    }
    script.push_str("bash \"$f\"");
    Ok(vec!["-c".to_string(), script])
}

/// The 5100's spec: `cmd`/`args` as given, `env` minus any `HIVE_CI_*`
/// plus the run's fresh ones, `secrets` minus any `HIVE_CI_*` plus
/// `HIVE_CI_NSEC` = the publisher's secret key.
#[allow(clippy::too_many_arguments)]
pub fn job_spec(
    run_id: &EventId,
    run: &WorkflowRun,
    publisher: &Keys,
    exec: &Exec,
    cmd: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
) -> JobSpec {
    let mut all_env: Vec<(String, String)> =
        env.into_iter().filter(|(k, _)| !is_hive_var(k)).collect();
    all_env.extend(hive_env(run_id, run, exec));
    let mut all_secrets: Vec<(String, String)> = secrets
        .into_iter()
        .filter(|(k, _)| !is_hive_var(k))
        .collect();
    all_secrets.push((
        env::NSEC.to_string(),
        publisher.secret_key().to_secret_hex(),
    ));
    JobSpec {
        worker: exec.worker,
        p_tag: PTag::Worker,
        cmd,
        args,
        token: exec.token.clone(),
        parent: Some(*run_id),
        env: all_env,
        secrets: all_secrets,
        content: String::new(),
    }
}

/// A run ready to dispatch: the signed 5401 and the spec of its 5100
/// (secrets in plain text until [`crate::dispatch::build`] encrypts them).
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The signed kind 5401.
    pub run_event: Event,
    /// The throwaway key that will sign the 5402 (its secret is in `job`).
    pub publisher: PublicKey,
    /// The 5100 to dispatch.
    pub job: JobSpec,
}

fn sign_run(run: &WorkflowRun, me: &Keys, now: Timestamp) -> Result<Event> {
    run.to_builder()
        .custom_created_at(now)
        .sign_with_keys(me)
        .map_err(|e| Error::Runtime(format!("cannot sign the workflow run: {e}")))
}

/// What a fresh run is of.
#[derive(Debug, Clone)]
pub struct FreshRun {
    /// The repository.
    pub repo: RepoRef,
    /// The workflow path.
    pub workflow: String,
    /// The branch.
    pub branch: String,
    /// The commit.
    pub commit: String,
    /// The runner script's Blossom URL.
    pub runner_url: String,
}

/// Budabit's "New run": a 5401 triggered by `me` with a fresh publisher,
/// and a 5100 running the runner script from `fresh.runner_url`.
pub fn plan_fresh(me: &Keys, fresh: &FreshRun, exec: &Exec, now: Timestamp) -> Result<RunPlan> {
    if fresh.workflow.trim().is_empty() {
        return Err(Error::input("--workflow must not be empty"));
    }
    let args = bootstrap_args(&fresh.runner_url)?;
    let publisher = Keys::generate();
    let run = WorkflowRun {
        repo: RepoRef {
            relays: Vec::new(),
            ..fresh.repo.clone()
        },
        workflow: fresh.workflow.clone(),
        triggered_by: me.public_key(),
        publisher: Some(publisher.public_key()),
        trigger: TRIGGER_MANUAL.to_string(),
        branch: fresh.branch.clone(),
        commit: fresh.commit.clone(),
    };
    let run_event = sign_run(&run, me, now)?;
    let job = job_spec(
        &run_event.id,
        &run,
        &publisher,
        exec,
        "bash".into(),
        args,
        Vec::new(),
        Vec::new(),
    );
    Ok(RunPlan {
        run_event,
        publisher: publisher.public_key(),
        job,
    })
}

/// The secrets an old run's job had that must be asked again (its own
/// `HIVE_CI_*` ones are made fresh).
pub fn secrets_to_ask(old_job: &JobRequest) -> Vec<String> {
    old_job
        .secrets
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !is_hive_var(k))
        .collect()
}

/// The old job's plain value of a Hive CI variable, if it had one.
pub fn old_env<'a>(old_job: &'a JobRequest, name: &str) -> Option<&'a str> {
    old_job
        .env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Budabit's "Re-run": a new 5401 like `old` (same repo, workflow,
/// branch, commit) triggered by `me` with a fresh publisher, and a 5100
/// like `old_job` (same worker unless `exec` names another, command,
/// arguments, env minus `HIVE_CI_*`) with fresh `HIVE_CI_*`; `secrets`
/// are the answers to [`secrets_to_ask`].
pub fn plan_rerun(
    me: &Keys,
    old: &RunEvent,
    old_job: &JobRequest,
    exec: &Exec,
    secrets: Vec<(String, String)>,
    now: Timestamp,
) -> Result<RunPlan> {
    let missing: Vec<String> = secrets_to_ask(old_job)
        .into_iter()
        .filter(|k| !secrets.iter().any(|(s, _)| s == k))
        .collect();
    if !missing.is_empty() {
        return Err(Error::input(format!(
            "the run's job had secrets that must be given again: {}",
            missing.join(", ")
        )));
    }
    let publisher = Keys::generate();
    let run = WorkflowRun {
        triggered_by: me.public_key(),
        publisher: Some(publisher.public_key()),
        trigger: TRIGGER_MANUAL.to_string(),
        ..old.run.clone()
    };
    let run_event = sign_run(&run, me, now)?;
    let job = job_spec(
        &run_event.id,
        &run,
        &publisher,
        exec,
        old_job.cmd.clone(),
        old_job.args.clone(),
        old_job.env.clone(),
        secrets,
    );
    Ok(RunPlan {
        run_event,
        publisher: publisher.public_key(),
        job,
    })
}

/// The [`Exec`] of a re-run: the old job's worker, and its
/// `HIVE_CI_RELAYS`/`HIVE_CI_BLOSSOM_SERVER` unless given anew.
pub fn rerun_exec(
    old_job: &JobRequest,
    worker: Option<PublicKey>,
    relays: Option<Vec<RelayUrl>>,
    blossom: Option<String>,
    token: Option<PaymentToken>,
) -> Result<Exec> {
    let relays = match relays {
        Some(r) => r,
        None => crate::config::parse_relays(
            old_env(old_job, env::RELAYS)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty()),
        )
        .map_err(|e| Error::input(format!("the old run's {}: {e}", env::RELAYS)))?,
    };
    let blossom = blossom
        .or_else(|| old_env(old_job, env::BLOSSOM_SERVER).map(str::to_string))
        .unwrap_or_default();
    Ok(Exec {
        worker: worker.unwrap_or(old_job.worker),
        relays,
        blossom,
        token,
    })
}
