//! The job a `rerun` or a batch line asks for: its inputs ([`JobInputs`],
//! flags as typed, or a batch line's values), the past job it may start
//! from ([`Base`]), resolved against the config into a validated
//! [`JobSpec`]. Also the other inputs of a dispatch: the job's stdin
//! content, secrets taken from the environment, the idempotency key.

use std::io::Read;

use nostr_sdk::prelude::*;

use crate::config::{self, Config};
use crate::deadline::Deadline;
use crate::dispatch::JobSpec;
use crate::error::{Error, Result};
use crate::follow;
use crate::journal::Journal;
use crate::notice::{short_id, Notice, Notices};
use crate::protocol::{parse_key_value, validate_job_fields, JobRef, JobRequest, PTag};
use crate::relays;
use crate::settings::{self, Settings};

/// What the user asked for, as given (flags, or a batch line turned into
/// the same shape); [`job_spec`] resolves it. Empty or `None` means
/// "not given": the past job's value, else the config's, applies.
#[derive(Debug, Clone, Default)]
pub struct JobInputs {
    /// `--worker` (npub or hex).
    pub worker: Option<String>,
    /// `--p` (`worker`, `self` or a pubkey).
    pub p_tag: Option<String>,
    /// `--cmd`.
    pub cmd: Option<String>,
    /// The command's arguments (after `--`).
    pub args: Vec<String>,
    /// `--env KEY=VALUE`, in order (a later one wins).
    pub env: Vec<String>,
    /// `--secret KEY[=VALUE]`.
    pub secrets: Vec<String>,
    /// `--run` (the parent event id).
    pub run: Option<String>,
}

/// A past job that `rerun JOB` starts from.
#[derive(Debug, Clone)]
pub struct Base {
    /// Its request.
    pub req: JobRequest,
    /// Who signed it.
    pub author: PublicKey,
    /// Its id.
    pub id: EventId,
}

impl Base {
    /// The past job in a signed event; bad input when it is not a request.
    pub fn from_event(event: &Event) -> Result<Base> {
        let req = JobRequest::from_event(event)
            .ok_or_else(|| Error::input(format!("event {} is not a job request", event.id)))?;
        Ok(Base {
            req,
            author: event.pubkey,
            id: event.id,
        })
    }
}

/// The warning `--p self` earns.
pub const P_SELF_WARNING: &str =
    "--p self: today's Loom clients and workers identify the worker by the `p` tag alone; \
     with your own key there, workers will not see this job as theirs";

/// Resolve every input except the token into a validated spec: a flag
/// beats the past job's value, which beats the config's. Warnings arise
/// in `notices` (kept when a later input fails).
pub fn job_spec(
    cfg: &Config,
    a: &JobInputs,
    base: Option<&Base>,
    notices: &mut Notices,
) -> Result<JobSpec> {
    let worker = worker(cfg, a, base)?;
    let p_tag = p_tag(cfg, a, base)?;
    if p_tag == PTag::SelfKey {
        notices.push(Notice::Warning(P_SELF_WARNING.into()));
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
    let env = env(a, base)?;
    let secrets = secrets(a, base)?;
    let parent = parent(a, base)?;
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

fn worker(cfg: &Config, a: &JobInputs, base: Option<&Base>) -> Result<PublicKey> {
    match (&a.worker, base) {
        (Some(w), _) => config::parse_pubkey(w).map_err(|e| Error::input(format!("--worker: {e}"))),
        (None, Some(b)) => Ok(b.req.worker),
        (None, None) => cfg.worker.ok_or_else(|| {
            Error::input(
                "no worker: pass --worker, set JOBCTL_WORKER, or set `worker` in the config",
            )
        }),
    }
}

fn p_tag(cfg: &Config, a: &JobInputs, base: Option<&Base>) -> Result<PTag> {
    Ok(match (&a.p_tag, base) {
        (Some(p), _) => config::parse_p_tag(p).map_err(|e| Error::input(format!("--p: {e}")))?,
        (None, Some(b)) if b.req.p == b.req.worker => PTag::Worker,
        (None, Some(b)) if b.req.p == b.author => PTag::SelfKey,
        (None, Some(b)) => PTag::Key(b.req.p),
        (None, None) => cfg.p_tag,
    })
}

/// The past job's environment with `--env` applied over it.
fn env(a: &JobInputs, base: Option<&Base>) -> Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = base.map(|b| b.req.env.clone()).unwrap_or_default();
    for s in &a.env {
        let (k, v) = parse_key_value(s).map_err(|e| Error::input(format!("--env: {e}")))?;
        match env.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    }
    Ok(env)
}

/// The secrets given; a rerun must be given every secret its past job had
/// (their values are never stored).
fn secrets(a: &JobInputs, base: Option<&Base>) -> Result<Vec<(String, String)>> {
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
                short_id(&b.id.to_hex()),
                missing.join(", ")
            )));
        }
    }
    Ok(secrets)
}

fn parent(a: &JobInputs, base: Option<&Base>) -> Result<Option<EventId>> {
    Ok(match (&a.run, base) {
        (Some(r), _) => Some(EventId::parse(r.trim()).map_err(|_| {
            Error::input(format!(
                "--run: `{r}` is not an event id (hex, note1 or nevent1)"
            ))
        })?),
        (None, Some(b)) => b.req.parent,
        (None, None) => None,
    })
}

/// `--secret KEY=VALUE`, or `--secret KEY` taking the value from the environment.
pub fn secret_value(s: &str) -> Result<(String, String)> {
    if s.contains('=') {
        return parse_key_value(s).map_err(|e| Error::input(format!("--secret: {e}")));
    }
    let (k, _) =
        parse_key_value(&format!("{s}=")).map_err(|e| Error::input(format!("--secret: {e}")))?;
    let v = std::env::var(&k)
        .map_err(|_| Error::input(format!("--secret {k}: no value given and ${k} is not set")))?;
    Ok((k, v))
}

/// Largest job input (`--stdin`) accepted: 64 KiB, the smallest common
/// relay cap on a whole event (strfry's default).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// The job's input from `--stdin FILE|-`, checked: UTF-8 (it rides in
/// the event's content), at most [`MAX_INPUT_BYTES`], and not sharing
/// stdin with `--token -` (`token_reads_stdin`).
pub fn job_input(src: Option<&str>, token_reads_stdin: bool) -> Result<Option<String>> {
    let Some(src) = src else {
        return Ok(None);
    };
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if src == "-" {
        if token_reads_stdin {
            return Err(Error::input(
                "--stdin - cannot be combined with --token -: both would read stdin",
            ));
        }
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read the job's input from stdin", e))?;
    } else {
        let f =
            std::fs::File::open(src).map_err(|e| Error::input(format!("--stdin {src}: {e}")))?;
        f.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::input(format!("--stdin {src}: {e}")))?;
    }
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(Error::input(format!(
            "--stdin: the job's input is over {} KiB (relays refuse events that big)",
            MAX_INPUT_BYTES / 1024
        )));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::input("--stdin: the job's input is not UTF-8 text"))
}

/// `$JOBCTL_TOKEN`, when set to something other than blanks.
pub fn env_token() -> Option<String> {
    settings::env_nonempty(settings::env::TOKEN)
}

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

/// `--idempotency-key`, else `$JOBCTL_IDEMPOTENCY_KEY`; blank is none.
pub fn idempotency_key(flag: Option<&str>) -> Result<Option<String>> {
    let key = flag
        .map(str::to_string)
        .or_else(|| std::env::var(settings::env::IDEMPOTENCY_KEY).ok())
        .filter(|k| !k.trim().is_empty());
    if key.as_ref().is_some_and(|k| k.len() > MAX_IDEMPOTENCY_KEY) {
        return Err(Error::input(
            "--idempotency-key is longer than 256 characters",
        ));
    }
    Ok(key)
}

/// Find a past job: in the journal, else on the relays (the configured
/// ones plus the reference's hints), within half of `deadline` (the
/// publish needs the rest).
pub async fn load_base(
    settings: &Settings,
    journal: Option<&Journal>,
    job: &str,
    relays: &[RelayUrl],
    deadline: Deadline,
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
            let key = settings.optional_key()?;
            look_up(key.as_ref().map(|k| &k.keys), &urls, r.id, deadline).await?
        }
    };
    Base::from_event(&event)
}

/// A job request on the relays.
async fn look_up(
    keys: Option<&Keys>,
    urls: &[RelayUrl],
    id: EventId,
    deadline: Deadline,
) -> Result<Event> {
    let client = relays::reader(keys, urls, false).await;
    let (trackers, reach) = follow::load_jobs_settling(
        &client,
        urls,
        &[id],
        deadline.share(2),
        follow::SETTLE_GRACE,
    )
    .await;
    relays::shutdown(&client).await;
    trackers
        .into_iter()
        .next()
        .and_then(|t| t.request)
        .ok_or_else(|| not_found(id, &reach, urls.len(), deadline))
}

/// A job neither the journal nor the relays had: "timed out" (or the
/// relays' failures) when some relay did not answer, never "not found".
pub fn not_found(id: EventId, reach: &relays::Reach, relays: usize, deadline: Deadline) -> Error {
    if !reach.complete() {
        return follow::reach_error(reach, deadline.total(), &format!("looking up job {id}"));
    }
    Error::Runtime(format!(
        "job {id} not found in the journal or on {relays} relay(s)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with_worker() -> (Config, Keys) {
        let w = Keys::generate();
        let mut cfg = Config::defaults("config.toml".into());
        cfg.worker = Some(w.public_key());
        (cfg, w)
    }

    #[test]
    fn flags_beat_the_config_and_later_env_wins() {
        let (cfg, _) = cfg_with_worker();
        let other = Keys::generate().public_key();
        let a = JobInputs {
            worker: Some(other.to_hex()),
            cmd: Some("echo".into()),
            args: vec!["hi".into()],
            env: vec!["A=1".into(), "A=2".into(), "B=3".into()],
            ..JobInputs::default()
        };
        let mut notices = Notices::new();
        let s = job_spec(&cfg, &a, None, &mut notices).unwrap();
        assert_eq!(s.worker, other);
        assert_eq!(s.cmd, "echo");
        assert_eq!(s.args, vec!["hi".to_string()]);
        assert_eq!(
            s.env,
            vec![("A".into(), "2".into()), ("B".into(), "3".into())]
        );
        assert!(notices.is_empty());
    }

    #[test]
    fn p_self_warns_even_when_a_later_input_fails() {
        let (cfg, _) = cfg_with_worker();
        let a = JobInputs {
            p_tag: Some("self".into()),
            cmd: Some("  ".into()),
            ..JobInputs::default()
        };
        let mut notices = Notices::new();
        let e = job_spec(&cfg, &a, None, &mut notices).unwrap_err();
        assert_eq!(e.to_string(), "--cmd must not be empty");
        assert_eq!(notices, vec![Notice::Warning(P_SELF_WARNING.into())]);
    }

    #[test]
    fn no_worker_and_bad_run_are_input_errors() {
        let e = job_spec(
            &Config::defaults("config.toml".into()),
            &JobInputs::default(),
            None,
            &mut vec![],
        );
        assert!(matches!(e, Err(Error::Input(m)) if m.starts_with("no worker")));
        let (cfg, _) = cfg_with_worker();
        let a = JobInputs {
            run: Some("nope".into()),
            ..JobInputs::default()
        };
        let e = job_spec(&cfg, &a, None, &mut vec![]).unwrap_err();
        assert!(e.to_string().starts_with("--run: `nope`"), "{e}");
    }

    #[test]
    fn a_rerun_keeps_the_past_job_and_needs_its_secrets() {
        let (cfg, w) = cfg_with_worker();
        let me = Keys::generate();
        let req = JobRequest {
            worker: w.public_key(),
            p: w.public_key(),
            cmd: "make".into(),
            args: vec!["test".into()],
            payment: None,
            parent: None,
            env: vec![("A".into(), "1".into())],
            secrets: vec![("S".into(), "ciphertext".into())],
            content: "input".into(),
        };
        let event = req.to_builder().sign_with_keys(&me).unwrap();
        let base = Base::from_event(&event).unwrap();
        let e = job_spec(&cfg, &JobInputs::default(), Some(&base), &mut vec![]).unwrap_err();
        assert!(e.to_string().contains("had secrets S"), "{e}");
        let a = JobInputs {
            secrets: vec!["S=v".into()],
            env: vec!["B=2".into()],
            ..JobInputs::default()
        };
        let s = job_spec(&cfg, &a, Some(&base), &mut vec![]).unwrap();
        assert_eq!((s.cmd.as_str(), s.content.as_str()), ("make", "input"));
        assert_eq!(s.p_tag, PTag::Worker);
        assert_eq!(s.env.len(), 2);
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        assert_eq!(idempotency_key(Some("k")).unwrap().as_deref(), Some("k"));
        let long = "x".repeat(257);
        assert!(idempotency_key(Some(&long)).is_err());
    }
}
