//! Following a workflow run with the job verbs (`watch`, `status`,
//! `show`, `logs`): a run id (kind 5401) resolves to its job (the 5100
//! whose `e` is the run, signed by the run's author) and its trusted
//! workflow result (5402, signed by the run's `publisher`). A run's state
//! is then [`super::run::run_state`]: 5402 > 5101 > 30100.

use std::collections::HashMap;
use std::time::Duration;

use nostr_sdk::prelude::*;

use super::run::{run_state, trusted_result, ResultEvent, RunEvent, StateSource};
use super::KIND_WORKFLOW_RESULT;
use crate::protocol::{job_request_kind, JobState, KIND_WORKFLOW_RUN};
use crate::relays;
use crate::state::JobTracker;

/// A run named on the command line, with what it resolves to.
#[derive(Debug, Clone)]
pub struct RunLink {
    /// The 5401.
    pub run: RunEvent,
    /// Its job (5100), if one is attached.
    pub job: Option<EventId>,
    /// Its trusted workflow result (5402), if any.
    pub result: Option<ResultEvent>,
}

impl RunLink {
    /// The run's state given its job's tracker: 5402 > 5101 > 30100.
    pub fn state(&self, job: Option<&JobTracker>) -> (JobState, StateSource) {
        run_state(self.result.as_ref().map(|r| &r.result), job)
    }

    /// The workflow log's URL (from the 5402).
    pub fn log_url(&self) -> Option<&str> {
        self.result
            .as_ref()
            .and_then(|r| r.result.log_url.as_deref())
    }
}

/// What to ask the relays for `ids` that may be runs: the runs, the jobs
/// attached to them and their workflow results.
pub fn filters(ids: &[EventId]) -> Vec<Filter> {
    let ids = ids.to_vec();
    vec![
        Filter::new()
            .ids(ids.clone())
            .kind(Kind::Custom(KIND_WORKFLOW_RUN)),
        Filter::new().kind(job_request_kind()).events(ids.clone()),
        Filter::new()
            .kind(Kind::Custom(KIND_WORKFLOW_RESULT))
            .events(ids),
    ]
}

/// The runs among `ids` found in `events`, each with its job and result.
pub fn links(ids: &[EventId], events: &[Event]) -> HashMap<EventId, RunLink> {
    let runs: Vec<RunEvent> = events
        .iter()
        .filter(|e| ids.contains(&e.id))
        .filter_map(|e| RunEvent::from_event(e).ok())
        .collect();
    let jobs = super::list::attach_jobs(&runs, events);
    let results: Vec<ResultEvent> = events
        .iter()
        .filter_map(|e| ResultEvent::from_event(e).ok())
        .collect();
    runs.into_iter()
        .map(|run| {
            let link = RunLink {
                job: jobs.get(&run.id).map(|e| e.id),
                result: trusted_result(&run, &results).cloned(),
                run,
            };
            (link.run.id, link)
        })
        .collect()
}

/// Look `ids` up as runs on `urls` within `timeout`.
pub async fn resolve(
    client: &Client,
    urls: &[RelayUrl],
    ids: &[EventId],
    timeout: Duration,
) -> HashMap<EventId, RunLink> {
    if ids.is_empty() {
        return HashMap::new();
    }
    let events = relays::fetch(client, urls, filters(ids), timeout).await;
    links(ids, &events)
}

/// Swap the tracker of every id that is not a job but a run with a job
/// for that job's tracker (loaded within `timeout`). Returns the runs by
/// their job's id (runs without a job keep their "not found" tracker and
/// are returned by the run's id).
pub async fn resolve_trackers(
    client: &Client,
    urls: &[RelayUrl],
    trackers: &mut [JobTracker],
    timeout: Duration,
) -> HashMap<EventId, RunLink> {
    let started = std::time::Instant::now();
    let missing: Vec<EventId> = trackers
        .iter()
        .filter(|t| t.request.is_none())
        .map(|t| t.id)
        .collect();
    let links = resolve(client, urls, &missing, timeout).await;
    let job_ids: Vec<EventId> = links.values().filter_map(|l| l.job).collect();
    let left = timeout.saturating_sub(started.elapsed());
    let (jobs, _) = if job_ids.is_empty() {
        (Vec::new(), relays::Reach::default())
    } else {
        crate::follow::load_jobs_reach(client, urls, &job_ids, left).await
    };
    let mut by_job = HashMap::new();
    for t in trackers.iter_mut() {
        let Some(link) = links.get(&t.id) else {
            continue;
        };
        let found = link
            .job
            .and_then(|j| jobs.iter().find(|x| x.id == j && x.request.is_some()));
        match found {
            Some(job) => {
                *t = job.clone();
                by_job.insert(job.id, link.clone());
            }
            None => {
                by_job.insert(t.id, link.clone());
            }
        }
    }
    by_job
}

/// The run's newest trusted workflow result on `urls` (e.g. once its job
/// has finished).
pub async fn fetch_result(
    client: &Client,
    urls: &[RelayUrl],
    run: &RunEvent,
    timeout: Duration,
) -> Option<ResultEvent> {
    let f = Filter::new()
        .kind(Kind::Custom(KIND_WORKFLOW_RESULT))
        .event(run.id);
    let events = relays::fetch(client, urls, vec![f], timeout).await;
    let results: Vec<ResultEvent> = events
        .iter()
        .filter_map(|e| ResultEvent::from_event(e).ok())
        .collect();
    trusted_result(run, &results).cloned()
}

/// A run's part of `status`/`show`/`watch` output (JSON `run`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The run's id (hex).
    pub id: String,
    /// Its job's id (hex), if any.
    pub job: Option<String>,
    /// The workflow path.
    pub workflow: String,
    /// The branch.
    pub branch: String,
    /// The commit.
    pub commit: String,
    /// The run's state (5402 > 5101 > 30100).
    pub state: JobState,
    /// Which event decided it.
    pub source: StateSource,
    /// The 5402's status word.
    pub status: Option<String>,
    /// The 5402's exit code.
    pub exit_code: Option<i64>,
    /// The 5402's duration (seconds).
    pub duration: Option<f64>,
    /// The workflow log.
    pub log_url: Option<String>,
}

impl RunLink {
    /// The summary, given the job's tracker.
    pub fn summary(&self, job: Option<&JobTracker>) -> RunSummary {
        let (state, source) = self.state(job);
        let r = self.result.as_ref().map(|r| &r.result);
        RunSummary {
            id: self.run.id.to_hex(),
            job: self.job.map(|j| j.to_hex()),
            workflow: self.run.run.workflow.clone(),
            branch: self.run.run.branch.clone(),
            commit: self.run.run.commit.clone(),
            state,
            source,
            status: r.map(|r| r.status.clone()),
            exit_code: r.and_then(|r| r.exit_code),
            duration: r.and_then(|r| r.duration),
            log_url: r.and_then(|r| r.log_url.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hive::repo::RepoRef;
    use crate::hive::run::{WorkflowResult, WorkflowRun};

    #[test]
    fn a_run_links_to_its_job_and_only_its_publishers_result() {
        let (me, publisher, stranger) = (Keys::generate(), Keys::generate(), Keys::generate());
        let run = WorkflowRun {
            repo: RepoRef {
                owner: me.public_key(),
                identifier: "x".into(),
                relays: vec![],
            },
            workflow: "ci.yml".into(),
            triggered_by: me.public_key(),
            publisher: Some(publisher.public_key()),
            trigger: "manual".into(),
            branch: "main".into(),
            commit: "abc".into(),
        };
        let run_ev = run.to_builder().sign_with_keys(&me).expect("sign");
        let job = EventBuilder::new(job_request_kind(), "")
            .tag(Tag::event(run_ev.id))
            .tag(Tag::public_key(stranger.public_key()))
            .tag(Tag::parse(["cmd", "bash"]).expect("tag"))
            .sign_with_keys(&me)
            .expect("sign");
        let result = |k: &Keys, status: &str, code: i64| {
            WorkflowResult {
                run: run_ev.id,
                status: status.into(),
                exit_code: Some(code),
                duration: Some(3.0),
                log_url: Some("http://127.0.0.1:1/log".into()),
            }
            .to_builder()
            .sign_with_keys(k)
            .expect("sign")
        };
        let events = vec![
            run_ev.clone(),
            job.clone(),
            result(&publisher, "success", 0),
            result(&stranger, "failure", 1),
        ];
        let all = links(&[run_ev.id, job.id], &events);
        assert_eq!(all.len(), 1, "the job id is no run");
        let l = &all[&run_ev.id];
        assert_eq!(l.job, Some(job.id));
        let s = l.summary(None);
        assert_eq!(
            (s.state, s.source),
            (JobState::Success, StateSource::WorkflowResult)
        );
        assert_eq!((s.exit_code, s.log_url.as_deref()), (Some(0), l.log_url()));
        let unreported = links(&[run_ev.id], &events[..2]);
        let s = unreported[&run_ev.id].summary(None);
        assert_eq!((s.state, s.source), (JobState::Pending, StateSource::None));
    }
}
