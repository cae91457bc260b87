//! The network side of starting a run (for `jobctl rerun RUN` and
//! `rerun --repo --workflow`): where a repository's events go (the given
//! relays plus the repository's own), loading the run to re-run with its
//! job, and publishing a plan's 5401 before its 5100 is dispatched.
//!
//! The order that keeps money safe: look the idempotency key up in the
//! journal first (a hit republishes that job, whose 5401 went out
//! before it); else plan, publish the 5401 ([`publish_run`]), then
//! journal and publish the 5100 with [`crate::dispatch::dispatch_journaled`].
//! A crash between the two leaves a run without a job: no sat is at stake.

use nostr_sdk::prelude::*;

use super::exec::RunPlan;
use super::repo::{self, Announcement, RepoRef};
use super::run::RunEvent;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::protocol::{job_request_kind, JobRequest, KIND_WORKFLOW_RUN};
use crate::relays::{self, RelayOutcome};

/// `urls` plus `repo`'s relay hints and its announcement's relays; the
/// announcement too, when a relay had it.
pub async fn repo_relays(
    keys: Option<&Keys>,
    urls: &[RelayUrl],
    repo: &RepoRef,
    deadline: &Deadline,
) -> (Option<Announcement>, Vec<RelayUrl>) {
    let urls = repo::merge_relays(urls, &repo.relays);
    let client = relays::reader(keys, &urls, false).await;
    let (ann, _) = repo::fetch_announcement(&client, &urls, repo, deadline.share(3)).await;
    relays::shutdown(&client).await;
    let more = ann
        .as_ref()
        .map(|a| a.repo.relays.clone())
        .unwrap_or_default();
    let all = repo::merge_relays(&urls, &more);
    (ann, all)
}

/// A run to re-run, with its job.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    /// The 5401.
    pub run: RunEvent,
    /// Its job (5100), parsed.
    pub job: JobRequest,
    /// The job's id (`rerun_of` when the new job is journaled).
    pub job_id: EventId,
}

/// The run `id` (a 5401) and the job attached to it: the newest 5100
/// with `e` = the run, signed by the run's author.
pub async fn load_run(
    keys: Option<&Keys>,
    urls: &[RelayUrl],
    id: EventId,
    deadline: &Deadline,
) -> Result<LoadedRun> {
    let client = relays::reader(keys, urls, false).await;
    let filters = vec![
        Filter::new().id(id).limit(1),
        Filter::new().kind(job_request_kind()).event(id).limit(20),
    ];
    let fetched = relays::fetch_reach(&client, urls, filters, deadline.remaining()).await;
    relays::shutdown(&client).await;
    let Some(ev) = fetched.events.iter().find(|e| e.id == id) else {
        if !fetched.reach.complete() {
            return Err(crate::follow::reach_error(
                &fetched.reach,
                deadline.total(),
                "looking up the run",
            ));
        }
        return Err(Error::Runtime(format!("run {id} not found on the relays")));
    };
    if ev.kind != Kind::Custom(KIND_WORKFLOW_RUN) {
        return Err(Error::input(format!(
            "{id} is a kind {} event, not a workflow run (kind 5401)",
            ev.kind.as_u16()
        )));
    }
    let run = RunEvent::from_event(ev)
        .map_err(|e| Error::Runtime(format!("run {id} is malformed: {e}")))?;
    let jobs = super::list::attach_jobs(std::slice::from_ref(&run), &fetched.events);
    let (job, job_id) = jobs
        .get(&id)
        .and_then(|e| JobRequest::from_event(e).map(|j| (j, e.id)))
        .ok_or_else(|| Error::Runtime(format!("run {id} has no job (kind 5100) attached")))?;
    Ok(LoadedRun { run, job, job_id })
}

/// Publish the plan's 5401 to `urls` (signed already; `keys` answer AUTH).
pub async fn publish_run(
    keys: &Keys,
    plan: &RunPlan,
    urls: &[RelayUrl],
    deadline: &Deadline,
) -> Vec<RelayOutcome> {
    relays::publish(keys, &plan.run_event, urls, deadline.share(2)).await
}

/// What dispatching a run did: the 5401's outcomes and the 5100's report.
#[derive(Debug, Clone)]
pub struct RunDispatch {
    /// Where the 5401 went.
    pub run: Vec<RelayOutcome>,
    /// The 5100, journaled and published.
    pub job: crate::dispatch::DispatchReport,
}

/// Publish the plan's 5401 to `urls` and require `min_accept` of them to
/// take it: a run that did not reach enough relays gets no job (an
/// error; nothing is journaled, no payment need be made).
pub async fn send_run(
    keys: &Keys,
    plan: &RunPlan,
    urls: &[RelayUrl],
    deadline: &Deadline,
    min_accept: usize,
) -> Result<Vec<RelayOutcome>> {
    let run = publish_run(keys, plan, urls, deadline).await;
    run_accepted(&run, min_accept)?;
    Ok(run)
}

fn run_accepted(run: &[RelayOutcome], min_accept: usize) -> Result<()> {
    let accepted = relays::accepted(run);
    if accepted < min_accept {
        return Err(Error::Relay(format!(
            "the workflow run reached {accepted} of the {min_accept} relay(s) needed; no job was sent: {}",
            relays::failure_summary(run)
        )));
    }
    Ok(())
}

/// Where a run's job is dispatched: its journal, relays and bounds.
pub struct JobTarget<'a> {
    /// The journal the job is recorded in before it is published.
    pub journal: &'a mut crate::journal::Journal,
    /// Relays (the repository's and the configured ones).
    pub urls: &'a [RelayUrl],
    /// The command's one deadline.
    pub deadline: &'a Deadline,
    /// Relays that must accept.
    pub min_accept: usize,
    /// `--idempotency-key`.
    pub idempotency_key: Option<&'a str>,
    /// The job re-run (`rerun RUN`).
    pub rerun_of: Option<EventId>,
}

/// Build, sign and journal the plan's 5100 (with the token the plan now
/// carries; `wallet_lock`, the wallet's lock held since the token was
/// made, is released once the job is journaled), then publish it.
pub async fn dispatch_job(
    t: JobTarget<'_>,
    client: &Client,
    keys: &Keys,
    plan: &RunPlan,
    wallet_lock: Option<crate::keys::FileLock>,
) -> Result<crate::dispatch::DispatchReport> {
    let req = crate::dispatch::build(&plan.job, keys)?;
    let event = crate::dispatch::sign(&req, keys)?;
    crate::dispatch::journal_new(
        t.journal,
        keys,
        &plan.job,
        &event,
        t.urls,
        t.idempotency_key,
        t.rerun_of,
    )?;
    drop(wallet_lock);
    let payment = plan.job.token.as_ref().map(|t| t.info().clone());
    crate::dispatch::publish_journaled(
        t.journal,
        client,
        event,
        payment,
        t.urls,
        t.deadline.remaining(),
        t.min_accept,
    )
    .await
}

/// Publish the plan's 5401; once `min_accept` relays have it, build,
/// sign, journal and publish its 5100 (encrypting its secrets to the
/// worker). A 5401 that did not reach enough relays sends no job: an
/// error, with nothing journaled. `jobctl rerun` uses [`send_run`] and
/// [`dispatch_job`] instead, to make the payment token in between.
#[allow(clippy::too_many_arguments)]
pub async fn dispatch_plan(
    journal: &mut crate::journal::Journal,
    client: &Client,
    keys: &Keys,
    plan: &RunPlan,
    urls: &[RelayUrl],
    deadline: &Deadline,
    min_accept: usize,
    idempotency_key: Option<&str>,
    rerun_of: Option<EventId>,
) -> Result<RunDispatch> {
    // Sign first: a plan that cannot be built publishes nothing.
    crate::dispatch::build(&plan.job, keys)?;
    let run = relays::publish_with(client, &plan.run_event, urls, deadline.share(2)).await;
    run_accepted(&run, min_accept)?;
    let target = JobTarget {
        journal,
        urls,
        deadline,
        min_accept,
        idempotency_key,
        rerun_of,
    };
    let job = dispatch_job(target, client, keys, plan, None).await?;
    Ok(RunDispatch { run, job })
}

/// The kind of event `id` is, when one of `urls` has it within
/// `timeout` (to tell a run from a job before loading either).
pub async fn probe(
    keys: Option<&Keys>,
    urls: &[RelayUrl],
    id: EventId,
    timeout: std::time::Duration,
) -> Option<Event> {
    let client = relays::reader(keys, urls, false).await;
    let fetched =
        relays::fetch_reach(&client, urls, vec![Filter::new().id(id).limit(1)], timeout).await;
    relays::shutdown(&client).await;
    fetched
        .events
        .into_iter()
        .find(|e| e.id == id && e.verify().is_ok())
}

/// Upload a runner script (`--script FILE`, else
/// [`super::exec::RUNNER_SCRIPT`]) to the Blossom `server`, authorised by
/// `keys`; returns its URL for [`super::exec::FreshRun::runner_url`].
pub async fn upload_runner(
    server: &str,
    keys: &Keys,
    script: Option<Vec<u8>>,
    deadline: &Deadline,
) -> Result<String> {
    let body = script.unwrap_or_else(|| super::exec::RUNNER_SCRIPT.as_bytes().to_vec());
    let d = crate::blossom::upload(
        server,
        keys,
        body,
        Some("text/x-shellscript"),
        deadline.share(2),
    )
    .await?;
    Ok(d.url)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nostr_relay_builder::prelude::*;

    use super::*;
    use crate::hive::exec::{self, Exec, FreshRun};

    /// A fresh run of `me`'s repository `identifier` on a new worker key,
    /// published to `urls`.
    fn fresh_plan(me: &Keys, identifier: &str, urls: &[RelayUrl]) -> (RepoRef, RunPlan) {
        let repo = RepoRef {
            owner: me.public_key(),
            identifier: identifier.into(),
            relays: vec![],
        };
        let exec = Exec {
            worker: Keys::generate().public_key(),
            relays: urls.to_vec(),
            blossom: "http://127.0.0.1:1".into(),
            token: None,
        };
        let fresh = FreshRun {
            repo: repo.clone(),
            workflow: "ci.yml".into(),
            branch: "main".into(),
            commit: "abc".into(),
            runner_url: "http://127.0.0.1:1/runner.sh".into(),
        };
        let plan = exec::plan_fresh(me, &fresh, &exec, Timestamp::now()).expect("plan");
        (repo, plan)
    }

    #[tokio::test]
    async fn a_run_loads_reruns_and_publishes_on_a_real_relay() {
        let relay = LocalRelay::new(RelayBuilder::default());
        relay.run().await.expect("relay");
        let urls = vec![relay.url().await];
        let deadline = Deadline::after(Duration::from_secs(8));
        let me = Keys::generate();
        let (repo, plan) = fresh_plan(&me, "jobctl", &urls);
        let out = publish_run(&me, &plan, &urls, &deadline).await;
        assert_eq!(relays::accepted(&out), 1, "{out:?}");
        let job = crate::dispatch::build(&plan.job, &me).expect("build");
        let job_ev = crate::dispatch::sign(&job, &me).expect("sign");
        relays::publish(&me, &job_ev, &urls, Duration::from_secs(5)).await;
        let (ann, all) = repo_relays(Some(&me), &urls, &repo, &deadline).await;
        assert!(ann.is_none() && all == urls);
        let loaded = load_run(None, &urls, plan.run_event.id, &deadline)
            .await
            .expect("load");
        assert_eq!(loaded.job_id, job_ev.id);
        let (run, old_job) = (loaded.run, loaded.job);
        assert_eq!((run.id, old_job.parent), (plan.run_event.id, Some(run.id)));
        let x = exec::rerun_exec(&old_job, None, None, None, None).expect("exec");
        let again =
            exec::plan_rerun(&me, &run, &old_job, &x, vec![], Timestamp::now()).expect("rerun");
        assert_eq!(
            relays::accepted(&publish_run(&me, &again, &urls, &deadline).await),
            1
        );
        let job2 = crate::dispatch::build(&again.job, &me).expect("build");
        let job2_ev = crate::dispatch::sign(&job2, &me).expect("sign");
        relays::publish(&me, &job2_ev, &urls, Duration::from_secs(5)).await;
        let l2 = load_run(None, &urls, again.run_event.id, &deadline)
            .await
            .expect("the re-run loads with its job");
        let (rerun, new_job) = (l2.run, l2.job);
        assert_eq!(new_job.parent, Some(rerun.id));
        assert_eq!(
            (new_job.cmd, new_job.args),
            (old_job.cmd.clone(), old_job.args.clone())
        );
        assert_eq!(rerun.run.workflow, "ci.yml");
        let missing = load_run(None, &urls, EventId::all_zeros(), &deadline).await;
        assert!(matches!(missing, Err(crate::Error::Runtime(_))));
        let not_a_run = load_run(None, &urls, job_ev.id, &deadline).await;
        assert_eq!(not_a_run.map(|_| ()).unwrap_err().exit_code(), 2);
        relay.shutdown();
    }

    #[tokio::test]
    async fn dispatch_plan_sends_the_run_then_journals_and_sends_the_job() {
        let relay = LocalRelay::new(RelayBuilder::default());
        relay.run().await.expect("relay");
        let urls = vec![relay.url().await];
        let deadline = Deadline::after(Duration::from_secs(8));
        let dir = tempfile::tempdir().expect("dir");
        let mut journal = crate::journal::Journal::open(&dir.path().join("j.sqlite")).expect("j");
        let me = Keys::generate();
        let (_, plan) = fresh_plan(&me, "x", &urls);
        let client = relays::client(&me, &urls).await;
        let d = dispatch_plan(
            &mut journal,
            &client,
            &me,
            &plan,
            &urls,
            &deadline,
            1,
            None,
            None,
        )
        .await
        .expect("dispatch");
        assert_eq!((relays::accepted(&d.run), d.job.accepted), (1, 1));
        let id = EventId::parse(&d.job.id).expect("id");
        assert!(
            journal.get(&id).expect("get").is_some(),
            "the job is journaled"
        );
        let l = load_run(None, &urls, plan.run_event.id, &deadline)
            .await
            .expect("load");
        let (run, job) = (l.run, l.job);
        assert_eq!(
            (run.id, job.parent),
            (plan.run_event.id, Some(plan.run_event.id))
        );
        // A run no relay takes sends no job and journals nothing.
        let dead: Vec<RelayUrl> = vec![RelayUrl::parse("ws://127.0.0.1:1").expect("url")];
        let (_, plan2) = fresh_plan(&me, "x", &urls);
        let c2 = relays::client(&me, &dead).await;
        let short = Deadline::after(Duration::from_secs(2));
        let err = dispatch_plan(&mut journal, &c2, &me, &plan2, &dead, &short, 1, None, None)
            .await
            .map(|_| ())
            .expect_err("no relay");
        assert_eq!(err.exit_code(), 1);
        assert_eq!(journal.list(None, None, 10).expect("list").len(), 1);
        relays::shutdown(&client).await;
        relay.shutdown();
    }
}
