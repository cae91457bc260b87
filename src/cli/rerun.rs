//! `rerun`: one job, a past job again, or (`--batch`, see
//! [`super::batch`]) many; journaled before it is published, idempotent
//! with a key. The pipeline: resolve the inputs ([`jobctl::request`]),
//! heal an existing job for the idempotency key, pay
//! ([`jobctl::payment_plan`]), sign, journal, publish ([`jobctl::dispatch`]).

use clap::Args;

use crate::cli::render;
use jobctl::config::Config;
use jobctl::deadline::Deadline;
use jobctl::dispatch::{self, JobSpec};
use jobctl::error::{exit, Error, Result};
use jobctl::journal::{self, JobRecord, Journal};
use jobctl::keys::{FileLock, SigningKey};
use jobctl::relays;
use jobctl::request::{self, Base};
use nostr_sdk::prelude::*;

use super::{min_accept_for, read_stdin, relays_for, require_relays, runtime, Ctx};

mod flags;
mod hive;
mod new_job;
mod report;
#[cfg(test)]
mod tests;

pub(crate) use flags::inputs;
use new_job::{JournalSoon, NewJob};
pub(crate) use report::show_notices;
use report::{payment_summary, print_report};

pub fn run(ctx: &Ctx, a: RerunArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let relays = relays_for(&cfg, &a.relays)?;
    // One deadline for the whole command: lookups, mint calls, publish.
    let deadline = ctx.start_deadline(a.timeout.as_deref(), cfg.publish_timeout)?;
    let min_accept = min_accept_for(a.min_accept, &cfg)?;
    if !a.dry_run {
        enough_relays(&relays, min_accept)?;
    }
    if let Some(file) = &a.batch {
        return super::batch::run(ctx, &cfg, &a, file, &relays, min_accept);
    }
    let idem = request::idempotency_key(a.idempotency_key.as_deref())?;
    let key_lock = key_lock(ctx, idem.as_deref(), a.dry_run)?;
    let d = Rerun {
        ctx,
        a: &a,
        cfg: &cfg,
        relays,
        deadline,
        min_accept,
    };
    // One runtime and one relay pool for every lookup and the publish.
    let rt = runtime()?;
    // Look things up in an existing journal; create one only once every
    // input is known good and a job is about to be recorded. A plain new
    // job (no past job, Hive CI run or idempotency key to look up) needs
    // it only to record the job: it opens on the runtime's blocking thread
    // (the one that journals the job after) while the job is prepared.
    let plain = a.job.is_none() && a.repo.is_none() && idem.is_none();
    let opening = plain.then(|| {
        let path = ctx.settings.journal_path.clone();
        rt.spawn_blocking(move || Journal::open_existing(&path))
    });
    let mut journal = if plain { None } else { ctx.existing_journal()? };
    if a.repo.is_some() {
        return hive::fresh(&d, journal, idem.as_deref());
    }
    let base = match d.target(journal.as_ref())? {
        hive::Target::Run(id) => return hive::rerun_run(&d, id, journal, idem.as_deref()),
        hive::Target::Job(base) => base.map(|b| *b),
    };
    let spec = d.spec(base.as_ref())?;
    let key = ctx.key(&cfg)?;
    tracing::info!(key = ?key, "signing key");
    // A known idempotency key: sign nothing, spend nothing, heal the publish.
    if let (Some(k), Some(j), false) = (&idem, journal.as_mut(), a.dry_run) {
        if let Some(rec) = j.by_idempotency_key(k)? {
            if !j.is_checking(&rec.id)? {
                return d.heal(k, &spec, rec, journal, &key);
            }
            // An earlier run was cut off before its checks passed: that
            // job was never sent; this run checks and sends afresh.
            j.withdraw(&EventId::parse(&rec.id).map_err(|e| Error::Journal(e.to_string()))?)?;
        }
    }
    let client = rt.block_on(relays::one_job(&key.keys, &d.relays));
    // Still opening: the relays start connecting first.
    let journal = match opening {
        Some(opening) => JournalSoon::Opening(opening),
        None => JournalSoon::Ready(journal),
    };
    let job = NewJob {
        spec,
        base: base.as_ref(),
        key: &key,
        idem: idem.as_deref(),
    };
    let report = d.new_job(&rt, &client, job, journal);
    rt.block_on(async move {
        relays::shutdown(&client).await;
        drop(client);
    });
    // Nothing runs on the runtime any more (the relays are shut down, the
    // journal is closed) and the process exits next: tearing the runtime
    // down (its drivers, the relay tasks' memory) would cost a fifth of a
    // millisecond and free nothing the exit does not.
    std::mem::forget(rt);
    drop(key_lock);
    match report? {
        Some(report) => print_report(ctx, &report, a.json),
        None => Ok(exit::OK),
    }
}

/// `--dry-run`: the signed job on stdout, nothing published.
fn dry_run(ctx: &Ctx, spec: &JobSpec, event: &Event) -> Result<i32> {
    ctx.say(format!(
        "dry run: signed job {} not published ({})",
        event.id,
        payment_summary(spec)
    ));
    ctx.print(&event.as_json()).map(|_| exit::OK)
}

/// Concurrent runs with one idempotency key queue here (a lock file next
/// to the journal, released by the kernel if this process dies): the
/// first journals the job, the later ones find it.
fn key_lock(ctx: &Ctx, idem: Option<&str>, dry_run: bool) -> Result<Option<FileLock>> {
    if idem.is_none() || dry_run {
        return Ok(None);
    }
    journal::lock(&ctx.settings.journal_path, jobctl::wallet::LOCK_WAIT).map(Some)
}

/// Fail when no relay is known, or fewer than --min-accept.
fn enough_relays(relays: &[RelayUrl], min_accept: usize) -> Result<()> {
    require_relays(relays)?;
    if min_accept > relays.len() {
        return Err(Error::input(format!(
            "--min-accept {min_accept} is more than the {} relay(s) configured",
            relays.len()
        )));
    }
    Ok(())
}

/// What every step of one rerun needs, resolved once.
struct Rerun<'a> {
    ctx: &'a Ctx,
    a: &'a RerunArgs,
    cfg: &'a Config,
    relays: Vec<RelayUrl>,
    deadline: Deadline,
    min_accept: usize,
}

impl Rerun<'_> {
    /// `rerun JOB`: the past job, from the journal or the relays.
    fn base(&self, journal: Option<&Journal>) -> Result<Option<Base>> {
        let Some(job) = &self.a.job else {
            return Ok(None);
        };
        let s = &self.ctx.settings;
        runtime()?
            .block_on(request::load_base(
                s,
                journal,
                job,
                &self.relays,
                self.deadline,
            ))
            .map(Some)
    }

    /// The job from the flags (and the past job), with its `--stdin` input.
    fn spec(&self, base: Option<&Base>) -> Result<JobSpec> {
        let mut notices = Vec::new();
        let spec = request::job_spec(self.cfg, &inputs(self.a), base, &mut notices);
        show_notices(self.ctx, &notices);
        let mut spec = spec?;
        let token_reads_stdin = self.a.token.as_deref() == Some("-");
        if let Some(input) = request::job_input(self.a.stdin.as_deref(), token_reads_stdin)? {
            spec.content = input;
        }
        Ok(spec)
    }

    /// The idempotency key names a journaled job: republish it to the
    /// relays that have not accepted it yet (a different job under the
    /// same key is bad input).
    fn heal(
        &self,
        k: &str,
        spec: &JobSpec,
        rec: JobRecord,
        journal: Option<Journal>,
        key: &SigningKey,
    ) -> Result<i32> {
        if rec.content_hash != spec.content_hash(&key.keys) {
            return Err(Error::input(format!(
                "idempotency key `{k}` already names job {} with different content",
                rec.id
            )));
        }
        if self.a.token.is_some() || request::env_token().is_some() {
            self.ctx.warn(&format!(
                "job {} already exists for this idempotency key; the token given was not used",
                render::short_id(&rec.id)
            ));
        }
        let event = rec.signed_event()?;
        let mut journal = journal.ok_or_else(|| Error::Journal("not open".into()))?;
        if !self.a.json {
            self.ctx.say(format!(
                "idempotency key `{k}`: job {} exists; republishing to relays that have not accepted it",
                render::short_id(&rec.id)
            ));
        }
        let report = runtime()?.block_on(dispatch::publish_journaled_as(
            &mut journal,
            &key.keys,
            event,
            dispatch::journaled_payment(&rec),
            &self.relays,
            self.deadline.remaining(),
            self.min_accept,
        ))?;
        print_report(self.ctx, &report, self.a.json)
    }
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// A past job to run again (hex, note1, nevent1; from the journal or the
    /// relays): same worker, cmd, args, env and parent, with a fresh token.
    /// Flags given as well override the original's values.
    /// A Hive CI workflow run (kind 5401) given here is re-run the way
    /// Budabit's Re-run does: a new run and a new job (same worker, command
    /// and env, fresh `HIVE_CI_*`; `--secret` for the old job's secrets);
    /// the new run's id is printed.
    #[arg(value_name = "JOB|RUN", conflicts_with = "batch")]
    pub job: Option<String>,

    /// Start a fresh Hive CI workflow run of this repository (naddr1...,
    /// nostr://npub.../relay/identifier or 30617:<pubkey>:<identifier>);
    /// needs --workflow. The runner script is uploaded to --blossom.
    #[arg(long, value_name = "REPO", conflicts_with_all = ["job", "batch"], requires = "workflow")]
    pub repo: Option<String>,

    /// The workflow file of a fresh run, e.g. .github/workflows/ci.yml.
    #[arg(long, value_name = "PATH", requires = "repo")]
    pub workflow: Option<String>,

    /// The branch of a fresh run [default: main].
    #[arg(long, value_name = "BRANCH", requires = "repo")]
    pub branch: Option<String>,

    /// The commit of a fresh run [default: none, the branch's head].
    #[arg(long, value_name = "SHA", requires = "repo")]
    pub commit: Option<String>,

    /// Blossom server for the runner script and the run's log (http or
    /// https) [default: config `blossom`; a re-run keeps its run's].
    #[arg(long, value_name = "URL")]
    pub blossom: Option<String>,

    /// Runner script of a fresh run instead of the built-in one (clone,
    /// `act -W`, `jobctl ci report`); uploaded to the Blossom server.
    #[arg(long, value_name = "FILE", requires = "repo")]
    pub script: Option<String>,

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

    /// Publish only to the configured relays, not also to the worker's own
    /// inbox relays from its NIP-65 relay list (config `outbox = false`).
    #[arg(long)]
    pub no_outbox: bool,

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
