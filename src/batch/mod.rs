//! `rerun --batch`: an NDJSON file of job specs planned, journaled and
//! published together. A line ([`BatchLine`]) becomes the same
//! [`JobInputs`] the flags make (the flags give defaults a line's values
//! override), then a [`JobSpec`]; [`plan`] validates every line (and
//! finds jobs that already exist for an idempotency key) before anything
//! is signed; [`journal_all`] records every new job in one transaction;
//! [`publish`] sends them, a bounded number at a time.

mod targets;

pub use targets::Targets;

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;
use nostr_sdk::prelude::*;
use serde::Deserialize;

use crate::config::Config;
use crate::deadline::Deadline;
use crate::dispatch::{self, DispatchReport, JobSpec};
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::notice::{short_id, Notice, Notices};
use crate::payment::{PaymentToken, TokenInfo};
use crate::protocol::{check_text, validate_env_key};
use crate::relays::{self, RelayOutcome};
use crate::request::{self, JobInputs, MAX_IDEMPOTENCY_KEY};

/// One line of a batch file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchLine {
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

impl BatchLine {
    /// Parse and check one line: the same rules as the flags.
    pub fn parse(text: &str) -> Result<BatchLine> {
        let l: BatchLine = serde_json::from_str(text).map_err(|e| {
            Error::input(format!(
                "not a job spec: {}",
                crate::text::one_line(&e.to_string())
            ))
        })?;
        // A key holding `=` would otherwise be split differently once
        // written as KEY=VALUE.
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
        if l.idempotency_key
            .as_ref()
            .is_some_and(|k| k.len() > MAX_IDEMPOTENCY_KEY)
        {
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
        Ok(l)
    }

    /// The line's job inputs over the flags' `defaults`: a line's own
    /// values win; its env comes after the flags' (and so wins too).
    pub fn inputs(&self, defaults: &JobInputs) -> JobInputs {
        let pairs = |m: &Option<BTreeMap<String, String>>| {
            m.iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        JobInputs {
            worker: self.worker.clone().or_else(|| defaults.worker.clone()),
            p_tag: self.p.clone().or_else(|| defaults.p_tag.clone()),
            cmd: self.cmd.clone().or_else(|| defaults.cmd.clone()),
            args: self.args.clone().unwrap_or_else(|| defaults.args.clone()),
            env: defaults
                .env
                .iter()
                .cloned()
                .chain(pairs(&self.env))
                .collect(),
            secrets: pairs(&self.secrets),
            run: self.run.clone().or_else(|| defaults.run.clone()),
        }
    }

    /// The line's job spec with its payment (a line never reads
    /// `$JOBCTL_TOKEN`), and its idempotency key (blank is none).
    pub fn spec(
        &self,
        cfg: &Config,
        defaults: &JobInputs,
        notices: &mut Notices,
    ) -> Result<(JobSpec, Option<String>)> {
        let mut spec = request::job_spec(cfg, &self.inputs(defaults), None, notices)?;
        if self.unpaid != Some(true) {
            let raw = self.token.as_deref().ok_or_else(|| {
                Error::input("no token: give \"token\" or \"unpaid\": true (batch lines do not read $JOBCTL_TOKEN)")
            })?;
            spec.token = Some(PaymentToken::parse(raw)?);
        }
        let idem = self
            .idempotency_key
            .clone()
            .filter(|k| !k.trim().is_empty());
        Ok((spec, idem))
    }
}

/// A validated batch entry.
#[derive(Debug)]
pub struct Planned {
    /// Line number in the file (from 1).
    pub line: usize,
    /// The job.
    pub spec: JobSpec,
    /// Its idempotency key.
    pub idem: Option<String>,
    /// The job that already exists for this idempotency key.
    pub existing: Option<Event>,
}

/// Every line of a batch, checked: the jobs, or what is wrong with which
/// lines (`line N: ...`). Any error means nothing may be signed.
#[derive(Debug, Default)]
pub struct BatchPlan {
    /// The jobs, in file order.
    pub jobs: Vec<Planned>,
    /// One message per bad line.
    pub errors: Vec<String>,
}

/// Plan a batch file's `text`: blank lines and `#` comments skipped,
/// idempotency keys unique within the batch and checked against the
/// journal (an existing job with the same content is reused, its token
/// not spent).
pub fn plan(
    cfg: &Config,
    defaults: &JobInputs,
    text: &str,
    keys: &Keys,
    journal: Option<&Journal>,
    notices: &mut Notices,
) -> Result<BatchPlan> {
    let mut plan = BatchPlan::default();
    let mut seen_keys = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let parsed = BatchLine::parse(raw).and_then(|l| {
            let (spec, idem) = l.spec(cfg, defaults, notices)?;
            Ok((spec, idem, l.token.is_some()))
        });
        let (spec, idem, has_token) = match parsed {
            Ok(p) => p,
            Err(e) => {
                plan.errors.push(format!("line {n}: {e}"));
                continue;
            }
        };
        let mut existing = None;
        if let Some(k) = &idem {
            if !seen_keys.insert(k.clone()) {
                plan.errors.push(format!(
                    "line {n}: idempotency key `{k}` appears twice in the batch"
                ));
                continue;
            }
            match existing_job(journal, k, &spec, keys, n, has_token, notices)? {
                Ok(e) => existing = e,
                Err(msg) => {
                    plan.errors.push(msg);
                    continue;
                }
            }
        }
        plan.jobs.push(Planned {
            line: n,
            spec,
            idem,
            existing,
        });
    }
    Ok(plan)
}

/// The journaled job for idempotency key `k`, if any; the inner `Err` is
/// a bad line (the key names a job with other content).
fn existing_job(
    journal: Option<&Journal>,
    k: &str,
    spec: &JobSpec,
    keys: &Keys,
    n: usize,
    has_token: bool,
    notices: &mut Notices,
) -> Result<std::result::Result<Option<Event>, String>> {
    let Some(rec) = journal
        .map(|j| j.by_idempotency_key(k))
        .transpose()?
        .flatten()
    else {
        return Ok(Ok(None));
    };
    if rec.content_hash != spec.content_hash(keys) {
        return Ok(Err(format!(
            "line {n}: idempotency key `{k}` already names job {} with different content",
            rec.id
        )));
    }
    if has_token {
        notices.push(Notice::Warning(format!(
            "line {n}: job {} already exists for idempotency key `{k}`; its token was not used",
            short_id(&rec.id)
        )));
    }
    Ok(Ok(Some(rec.signed_event()?)))
}

/// Sign every new job and journal them all in one transaction (before
/// the first publish); existing jobs keep their event. Returns the events
/// in plan order.
pub fn journal_all(
    journal: &mut Journal,
    jobs: &[Planned],
    keys: &Keys,
    targets: &Targets,
) -> Result<Vec<Event>> {
    let mut events = Vec::with_capacity(jobs.len());
    for p in jobs {
        events.push(match &p.existing {
            Some(e) => e.clone(),
            None => dispatch::sign(&dispatch::build(&p.spec, keys)?, keys)?,
        });
    }
    let hashes: Vec<String> = jobs.iter().map(|p| p.spec.content_hash(keys)).collect();
    let infos = payments(jobs);
    let to: Vec<Vec<RelayUrl>> = jobs.iter().map(|p| targets.of(&p.spec.worker)).collect();
    let fresh: Vec<crate::journal::NewJob<'_>> = jobs
        .iter()
        .zip(events.iter().zip(&to))
        .zip(hashes.iter().zip(&infos))
        .filter(|((p, _), _)| p.existing.is_none())
        .map(|((p, (e, to)), (h, info))| {
            dispatch::new_job(&p.spec, e, info.as_ref(), to, p.idem.as_deref(), h, None)
        })
        .collect();
    journal.record_dispatches(&fresh)?;
    Ok(events)
}

/// Each job's payment summary (never the token).
pub fn payments(jobs: &[Planned]) -> Vec<Option<TokenInfo>> {
    jobs.iter()
        .map(|p| p.spec.token.as_ref().map(|t| t.info().clone()))
        .collect()
}

/// How a batch is published.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    /// Where the jobs go.
    pub targets: &'a Targets,
    /// Each job's worker, in the events' order.
    pub workers: &'a [PublicKey],
    /// The whole batch shares the command's deadline.
    pub deadline: Deadline,
    /// Jobs published at once.
    pub concurrency: usize,
    /// Relays that must accept each job.
    pub min_accept: usize,
}

/// Publish the journaled `events` (with their `payments`) to the relays
/// each has not reached yet, `concurrency` at a time, recording outcomes
/// in batches of 100. Returns one report per event, in order; a failed
/// outcome write is a warning.
pub async fn publish(
    journal: &mut Journal,
    keys: &Keys,
    events: &[Event],
    payments: &[Option<TokenInfo>],
    p: Publish<'_>,
    notices: &mut Notices,
) -> Vec<DispatchReport> {
    let every = p.targets.all();
    let client = relays::client(keys, &every).await;
    let down = relays::connect_all(&client, &every, p.deadline.share(2)).await;
    let down = &down;
    // Relays each job already reached (idempotent retries).
    // A journal that cannot say is no reason to stop: the same signed
    // event goes to every relay again (relays keep one copy), and the user
    // is told.
    let earlier: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            journal.accepted_relays(&e.id).unwrap_or_else(|err| {
                notices.push(Notice::Warning(format!(
                    "job {}: cannot read which relays accepted it earlier ({err}); sending it to every relay",
                    crate::notice::short_id(&e.id.to_hex())
                )));
                Vec::new()
            })
        })
        .collect();
    let client_ref = &client;
    let mut stream = futures::stream::iter(events.iter().enumerate().map(|(i, ev)| {
        let todo: Vec<RelayUrl> = p
            .targets
            .of(&p.workers[i])
            .iter()
            .filter(|u| !earlier[i].contains(&u.to_string()))
            .cloned()
            .collect();
        async move {
            let out = if todo.is_empty() {
                Vec::new()
            } else {
                let left = p.deadline.remaining();
                relays::publish_reachable(client_ref, ev, &todo, left, down).await
            };
            (i, out)
        }
    }))
    .buffer_unordered(p.concurrency);
    let mut reports: Vec<Option<DispatchReport>> = vec![None; events.len()];
    let mut pending: Vec<(EventId, Vec<RelayOutcome>)> = Vec::new();
    while let Some((i, out)) = stream.next().await {
        pending.push((events[i].id, out.clone()));
        if pending.len() >= 100 {
            record(journal, &mut pending, notices);
        }
        let mut all = dispatch::accepted_earlier(&earlier[i]);
        all.extend(out);
        let mut report =
            dispatch::report(events[i].clone(), payments[i].clone(), all, p.min_accept);
        report.worker_inbox = p.targets.inbox(&p.workers[i]);
        reports[i] = Some(report);
    }
    drop(stream);
    record(journal, &mut pending, notices);
    client.shutdown().await;
    reports.into_iter().flatten().collect()
}

/// Write pending outcomes; a failure is a warning (the publish happened).
fn record(
    journal: &mut Journal,
    pending: &mut Vec<(EventId, Vec<RelayOutcome>)>,
    notices: &mut Notices,
) {
    if let Err(e) = journal.record_outcomes_many(pending) {
        notices.push(Notice::Warning(e.to_string()));
    }
    pending.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        let mut cfg = Config::defaults("config.toml".into());
        cfg.worker = Some(Keys::generate().public_key());
        cfg.cmd = "act".into();
        cfg
    }

    #[test]
    fn a_line_overrides_the_flags_and_its_env_comes_last() {
        let defaults = JobInputs {
            cmd: Some("make".into()),
            env: vec!["A=flag".into(), "B=flag".into()],
            args: vec!["all".into()],
            ..JobInputs::default()
        };
        let l = BatchLine::parse(r#"{"cmd":"echo","env":{"A":"line"},"unpaid":true}"#).unwrap();
        let (spec, idem) = l.spec(&cfg(), &defaults, &mut vec![]).unwrap();
        assert_eq!(spec.cmd, "echo");
        assert_eq!(spec.args, vec!["all".to_string()]);
        assert_eq!(
            spec.env,
            vec![("A".into(), "line".into()), ("B".into(), "flag".into())]
        );
        assert!(spec.token.is_none() && idem.is_none());
    }

    #[test]
    fn bad_lines_are_named_and_nothing_is_planned_for_them() {
        let keys = Keys::generate();
        let text = "# a comment\n\n{\"unpaid\":true}\n{\"bogus\":1}\n{\"cmd\":\"x\"}\n\
                    {\"unpaid\":true,\"idempotency_key\":\"k\"}\n{\"unpaid\":true,\"idempotency_key\":\"k\"}\n";
        let plan = plan(
            &cfg(),
            &JobInputs::default(),
            text,
            &keys,
            None,
            &mut vec![],
        )
        .unwrap();
        assert_eq!(
            plan.jobs.iter().map(|p| p.line).collect::<Vec<_>>(),
            vec![3, 6]
        );
        assert_eq!(plan.errors.len(), 3);
        assert!(
            plan.errors[0].starts_with("line 4: not a job spec"),
            "{:?}",
            plan.errors
        );
        assert!(
            plan.errors[1].starts_with("line 5: no token"),
            "{:?}",
            plan.errors
        );
        assert_eq!(
            plan.errors[2],
            "line 7: idempotency key `k` appears twice in the batch"
        );
    }

    #[test]
    fn unpaid_and_token_cannot_be_combined() {
        let e = BatchLine::parse(r#"{"unpaid":true,"token":"cashuA"}"#).unwrap_err();
        assert!(e.to_string().contains("cannot be combined"), "{e}");
    }
}
