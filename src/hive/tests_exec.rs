//! Unit tests of what starts and follows a run: the state rule, the
//! executing 5100, re-runs, and the runs query's filters.

use nostr_sdk::prelude::*;

use super::exec::{self, env, Exec, FreshRun};
use super::list::{attach_jobs, view, RunsQuery};
use super::repo::RepoRef;
use super::run::*;
use super::tests::{keys, relay, repo, sign};
use crate::protocol::{JobRequest, JobState};
use crate::state::JobTracker;

fn tracked(job: &Event, worker: &Keys, status: Option<&str>, exit: Option<i64>) -> JobTracker {
    let mut t = JobTracker::new(job.id);
    t.ingest(job);
    let tag = |k: &str, v: String| Tag::custom(TagKind::Custom(k.to_string().into()), [v]);
    if let Some(s) = status {
        let st = EventBuilder::new(Kind::Custom(30100), "").tags([
            Tag::identifier(job.id.to_hex()),
            Tag::event(job.id),
            tag("status", s.into()),
        ]);
        t.ingest(&sign(st, worker, 10));
    }
    if let Some(c) = exit {
        let r = EventBuilder::new(Kind::Custom(5101), "").tags([
            Tag::event(job.id),
            tag("exit_code", c.to_string()),
            tag("duration", "9".into()),
        ]);
        t.ingest(&sign(r, worker, 20));
    }
    t
}

fn plan() -> (exec::RunPlan, Keys, Keys) {
    let (me, worker) = (keys(1), keys(4));
    let exec = Exec {
        worker: worker.public_key(),
        relays: vec![relay("ws://127.0.0.1:7777")],
        blossom: "http://127.0.0.1:8000".into(),
        token: None,
    };
    let fresh = FreshRun {
        repo: repo(),
        workflow: ".github/workflows/ci.yml".into(),
        branch: "main".into(),
        commit: "abc123".into(),
        runner_url: format!("http://127.0.0.1:8000/{}", "b".repeat(64)),
    };
    (
        exec::plan_fresh(&me, &fresh, &exec, Timestamp::from(1000)).unwrap(),
        me,
        worker,
    )
}

#[test]
fn the_state_rule_is_5402_then_5101_then_30100() {
    let (p, me, worker) = plan();
    let run = RunEvent::from_event(&p.run_event).unwrap();
    let job = crate::dispatch::sign(&crate::dispatch::build(&p.job, &me).unwrap(), &me).unwrap();
    assert_eq!(
        run_state(None, None),
        (JobState::Pending, StateSource::None)
    );
    let t = tracked(&job, &worker, Some("running"), None);
    assert_eq!(
        run_state(None, Some(&t)),
        (JobState::Running, StateSource::JobStatus)
    );
    let t = tracked(&job, &worker, Some("running"), Some(1));
    assert_eq!(
        run_state(None, Some(&t)),
        (JobState::Failed, StateSource::JobResult)
    );
    let ok = WorkflowResult {
        run: run.id,
        status: "success".into(),
        exit_code: Some(0),
        duration: Some(3.0),
        log_url: None,
    };
    assert_eq!(
        run_state(Some(&ok), Some(&t)),
        (JobState::Success, StateSource::WorkflowResult)
    );
    // Only the run's publisher may report it; the newest trusted one wins.
    let publisher_result = |k: &Keys, at: u64, status: &str| {
        let r = WorkflowResult {
            status: status.into(),
            ..ok.clone()
        };
        ResultEvent::from_event(&sign(r.to_builder(), k, at)).unwrap()
    };
    let forged = publisher_result(&keys(9), 99, "success");
    assert!(trusted_result(&run, std::slice::from_ref(&forged)).is_none());
    let v = view(&run, Some(&t), &[forged]);
    assert_eq!(
        (v.state, v.source, v.exit_code, v.duration),
        (JobState::Failed, StateSource::JobResult, Some(1), Some(9.0))
    );
    assert_eq!(v.worker, Some(worker.public_key().to_hex()));
    assert_eq!(v.job, Some(job.id.to_hex()));
    let _ = me;
}

#[test]
fn the_executing_job_is_budabits() {
    let (p, me, worker) = plan();
    let run = RunEvent::from_event(&p.run_event).unwrap();
    assert_eq!(run.run.publisher, Some(p.publisher));
    assert_eq!(run.run.triggered_by, me.public_key());
    assert!(
        run.run.repo.relays.is_empty(),
        "the `a` tag carries no relays"
    );
    let req = crate::dispatch::build(&p.job, &me).unwrap();
    let ev = crate::dispatch::sign(&req, &me).unwrap();
    let back = JobRequest::from_event(&ev).unwrap();
    assert_eq!((back.cmd.as_str(), back.parent), ("bash", Some(run.id)));
    assert_eq!(back.args[0], "-c");
    assert!(
        back.args[1].contains(&"b".repeat(64)) && back.args[1].contains("sha256sum -c"),
        "{}",
        back.args[1]
    );
    let env_of = |k: &str| {
        back.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(env_of(env::RUN_ID), Some(run.id.to_hex()));
    assert_eq!(
        env_of(env::WORKFLOW).as_deref(),
        Some(".github/workflows/ci.yml")
    );
    assert_eq!(env_of(env::BRANCH).as_deref(), Some("main"));
    assert_eq!(env_of(env::COMMIT).as_deref(), Some("abc123"));
    assert_eq!(env_of(env::RELAYS).as_deref(), Some("ws://127.0.0.1:7777"));
    assert_eq!(
        env_of(env::BLOSSOM_SERVER).as_deref(),
        Some("http://127.0.0.1:8000")
    );
    let repo_url = env_of(env::REPOSITORY).unwrap();
    assert_eq!(
        RepoRef::parse(&repo_url).unwrap().coordinate(),
        repo().coordinate()
    );
    // HIVE_CI_NSEC: NIP-44 to the worker, decrypting to the publisher's key.
    assert_eq!(back.secrets.len(), 1);
    assert_eq!(back.secrets[0].0, env::NSEC);
    let plain = nip44::decrypt(worker.secret_key(), &me.public_key(), &back.secrets[0].1).unwrap();
    assert_eq!(Keys::parse(&plain).unwrap().public_key(), p.publisher);
    assert!(
        !ev.as_json().contains(&plain),
        "the secret never travels in clear"
    );
    // attach_jobs: only the run's author's job counts.
    let other = crate::dispatch::sign(&crate::dispatch::build(&p.job, &keys(9)).unwrap(), &keys(9))
        .unwrap();
    let jobs = attach_jobs(std::slice::from_ref(&run), &[other, ev.clone()]);
    assert_eq!(jobs.get(&run.id).map(|e| e.id), Some(ev.id));
}

#[test]
fn a_rerun_keeps_the_job_and_renews_hive_ci() {
    let (p, me, worker) = plan();
    let old_run = RunEvent::from_event(&p.run_event).unwrap();
    let mut spec = p.job.clone();
    spec.env.push(("MY_FLAG".into(), "1".into()));
    spec.secrets.push(("API_TOKEN".into(), "s3cret".into()));
    let old_job = crate::dispatch::build(&spec, &me).unwrap();
    assert_eq!(
        exec::secrets_to_ask(&old_job),
        vec!["API_TOKEN".to_string()]
    );
    let x = exec::rerun_exec(&old_job, None, None, None, None).unwrap();
    assert_eq!(
        (x.worker, x.blossom.as_str()),
        (worker.public_key(), "http://127.0.0.1:8000")
    );
    assert_eq!(x.relays, vec![relay("ws://127.0.0.1:7777")]);
    let someone = keys(5);
    let missing = exec::plan_rerun(
        &someone,
        &old_run,
        &old_job,
        &x,
        vec![],
        Timestamp::from(2000),
    );
    assert_eq!(missing.unwrap_err().exit_code(), 2);
    let again = vec![("API_TOKEN".to_string(), "new".to_string())];
    let np = exec::plan_rerun(
        &someone,
        &old_run,
        &old_job,
        &x,
        again,
        Timestamp::from(2000),
    )
    .unwrap();
    let new_run = RunEvent::from_event(&np.run_event).unwrap();
    assert_ne!(new_run.id, old_run.id);
    assert_eq!(new_run.run.triggered_by, someone.public_key());
    assert_ne!(new_run.run.publisher, old_run.run.publisher);
    assert_eq!(
        (new_run.run.workflow.as_str(), new_run.run.branch.as_str()),
        (old_run.run.workflow.as_str(), "main")
    );
    assert_eq!((np.job.cmd.as_str(), &np.job.args), ("bash", &old_job.args));
    assert_eq!(np.job.parent, Some(new_run.id));
    let run_ids: Vec<&String> = np
        .job
        .env
        .iter()
        .filter(|(k, _)| k == env::RUN_ID)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        run_ids,
        vec![&new_run.id.to_hex()],
        "exactly one, fresh HIVE_CI_RUN_ID"
    );
    assert!(np.job.env.contains(&("MY_FLAG".into(), "1".into())));
    let names: Vec<&str> = np.job.secrets.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["API_TOKEN", env::NSEC]);
}

#[test]
fn bootstrap_refuses_urls_that_would_break_the_script() {
    assert!(exec::bootstrap_args("https://b.example/x.sh").is_ok());
    for bad in [
        "file:///etc/passwd",
        "https://x/'; rm -rf /'",
        "https://x/a b",
        "",
    ] {
        assert_eq!(
            exec::bootstrap_args(bad).unwrap_err().exit_code(),
            2,
            "{bad}"
        );
    }
}

#[test]
fn runs_query_filters_and_fetch_limit() {
    let (p, _, _) = plan();
    let run = RunEvent::from_event(&p.run_event).unwrap();
    let v = view(&run, None, &[]);
    let q = |wf: Option<&str>, br: Option<&str>, st: Option<Vec<JobState>>| RunsQuery {
        repo: repo(),
        all_authors: false,
        workflow: wf.map(str::to_string),
        branch: br.map(str::to_string),
        states: st,
        limit: 20,
    };
    assert!(q(None, None, None).keeps(&v));
    assert_eq!(q(None, None, None).fetch_limit(), 20);
    assert!(q(Some("ci.yml"), Some("main"), Some(vec![JobState::Pending])).keeps(&v));
    assert!(q(Some(".github/workflows/ci.yml"), None, None).keeps(&v));
    assert_eq!(q(Some("ci.yml"), None, None).fetch_limit(), 200);
    assert!(!q(Some("release.yml"), None, None).keeps(&v));
    assert!(!q(None, Some("dev"), None).keeps(&v));
    assert!(!q(None, None, Some(vec![JobState::Success])).keeps(&v));
}
