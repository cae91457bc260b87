//! A repository's runs, the way Budabit's Pipelines tab finds them: its
//! announcement (for relays and maintainers), the 5401 runs whose `a` is
//! the repository and whose author is the owner or a maintainer, the 5100
//! jobs attached to them (`#e` = run), the jobs' statuses and results,
//! and the runs' 5402 results; each run's state by [`run_state`].

use std::collections::HashMap;

use nostr_sdk::prelude::*;
use serde::Serialize;

use super::repo::{Announcement, RepoRef};
use super::run::{
    run_state, trusted_result, ResultEvent, RunEvent, StateSource, KIND_WORKFLOW_RESULT,
};
use crate::deadline::Deadline;
use crate::protocol::{job_request_kind, JobState, KIND_WORKFLOW_RUN};
use crate::relays::{self, Reach};
use crate::state::JobTracker;

/// Which runs to list.
#[derive(Debug, Clone)]
pub struct RunsQuery {
    /// The repository.
    pub repo: RepoRef,
    /// Runs by anyone, not only the owner and maintainers.
    pub all_authors: bool,
    /// Only this workflow (the whole path, or its file name).
    pub workflow: Option<String>,
    /// Only this branch.
    pub branch: Option<String>,
    /// Only runs in one of these states.
    pub states: Option<Vec<JobState>>,
    /// At most this many runs shown.
    pub limit: usize,
}

impl RunsQuery {
    /// How many runs to ask the relays for: `limit`, or more when filters
    /// the relays cannot apply will drop some.
    pub fn fetch_limit(&self) -> usize {
        let filtered = self.workflow.is_some() || self.branch.is_some() || self.states.is_some();
        if filtered {
            (self.limit.saturating_mul(10)).clamp(self.limit, 1000)
        } else {
            self.limit
        }
    }

    /// Whether a run passes the workflow, branch and state filters.
    pub fn keeps(&self, v: &RunView) -> bool {
        let wf = self.workflow.as_deref().is_none_or(|w| {
            v.workflow == w || v.workflow.rsplit('/').next() == Some(w.trim_start_matches('/'))
        });
        let br = self.branch.as_deref().is_none_or(|b| v.branch == b);
        let st = self.states.as_ref().is_none_or(|s| s.contains(&v.state));
        wf && br && st
    }
}

/// One run, flattened for tables and JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The run id (5401, hex).
    pub id: String,
    /// When it was triggered (unix seconds).
    pub created_at: u64,
    /// `30617:<owner>:<identifier>`.
    pub repo: String,
    /// The workflow path.
    pub workflow: String,
    /// The branch.
    pub branch: String,
    /// The commit.
    pub commit: String,
    /// `manual`, ...
    pub trigger: String,
    /// Who triggered it (hex).
    pub triggered_by: String,
    /// Who signed the 5401 (hex).
    pub author: String,
    /// The throwaway key of its 5402 (hex).
    pub publisher: Option<String>,
    /// The attached job (5100, hex).
    pub job: Option<String>,
    /// The job's worker (hex).
    pub worker: Option<String>,
    /// The resolved state.
    pub state: JobState,
    /// Which event decided it.
    pub source: StateSource,
    /// The exit code (5402, else 5101).
    pub exit_code: Option<i64>,
    /// Run time in seconds (5402, else 5101).
    pub duration: Option<f64>,
    /// The workflow log (5402 `log_url`).
    pub log_url: Option<String>,
    /// The 5402's id.
    pub result: Option<String>,
}

/// Everything one listing found.
#[derive(Debug, Clone)]
pub struct RunsPage {
    /// The runs, newest first, filtered and cut to the limit.
    pub runs: Vec<RunView>,
    /// The repository's announcement, when a relay had it.
    pub announcement: Option<Announcement>,
    /// The relays asked in the end (given + the announcement's).
    pub relays: Vec<RelayUrl>,
    /// Who answered the run lookup.
    pub reach: Reach,
}

/// One run joined with what decides its state.
pub fn view(run: &RunEvent, job: Option<&JobTracker>, results: &[ResultEvent]) -> RunView {
    let result = trusted_result(run, results);
    let (state, source) = run_state(result.map(|r| &r.result), job);
    let job_result = job.and_then(|t| t.result());
    let r = &run.run;
    RunView {
        id: run.id.to_hex(),
        created_at: run.at.as_secs(),
        repo: r.repo.coordinate(),
        workflow: r.workflow.clone(),
        branch: r.branch.clone(),
        commit: r.commit.clone(),
        trigger: r.trigger.clone(),
        triggered_by: r.triggered_by.to_hex(),
        author: run.author.to_hex(),
        publisher: r.publisher.map(|p| p.to_hex()),
        job: job.map(|t| t.id.to_hex()),
        worker: job.and_then(|t| t.worker()).map(|w| w.to_hex()),
        state,
        source,
        exit_code: result
            .and_then(|r| r.result.exit_code)
            .or(job_result.and_then(|r| r.exit_code)),
        duration: result
            .and_then(|r| r.result.duration)
            .or(job_result.and_then(|r| r.duration)),
        log_url: result.and_then(|r| r.result.log_url.clone()),
        result: result.map(|r| r.id.to_hex()),
    }
}

/// The job attached to each run: the newest 5100 with `e` = the run,
/// signed by the run's author (anyone can attach a job to a run).
pub fn attach_jobs(runs: &[RunEvent], requests: &[Event]) -> HashMap<EventId, Event> {
    let mut out: HashMap<EventId, Event> = HashMap::new();
    for req in requests.iter().filter(|e| e.kind == job_request_kind()) {
        let Some(job) = crate::protocol::JobRequest::from_event(req) else {
            continue;
        };
        let Some(run) = runs.iter().find(|r| Some(r.id) == job.parent) else {
            continue;
        };
        if req.pubkey != run.author {
            continue;
        }
        let newer = out
            .get(&run.id)
            .is_none_or(|old| (req.created_at, req.id) > (old.created_at, old.id));
        if newer {
            out.insert(run.id, req.clone());
        }
    }
    out
}

/// List `q.repo`'s runs from `urls` plus the relays its announcement
/// names, within `deadline`. `keys` (when any) answer NIP-42 AUTH.
pub async fn list_runs(
    keys: Option<&Keys>,
    urls: &[RelayUrl],
    q: &RunsQuery,
    deadline: &Deadline,
) -> RunsPage {
    let (announcement, urls) = super::start::repo_relays(keys, urls, &q.repo, deadline).await;
    let client = relays::reader(keys, &urls, false).await;
    let mut f = Filter::new()
        .kind(Kind::Custom(KIND_WORKFLOW_RUN))
        .custom_tag(SingleLetterTag::lowercase(Alphabet::A), q.repo.coordinate())
        .limit(q.fetch_limit());
    if !q.all_authors {
        let trusted = match &announcement {
            Some(a) => a.trusted(),
            None => vec![q.repo.owner],
        };
        f = f.authors(trusted);
    }
    let fetched = relays::fetch_reach(&client, &urls, vec![f], deadline.share(2)).await;
    let mut runs: Vec<RunEvent> = fetched
        .events
        .iter()
        .filter_map(|e| RunEvent::from_event(e).ok())
        .filter(|r| r.run.repo.coordinate() == q.repo.coordinate())
        .collect();
    runs.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
    runs.truncate(q.fetch_limit());
    let views = join_runs(&client, &urls, &runs, deadline).await;
    relays::shutdown(&client).await;
    let mut views: Vec<RunView> = views.into_iter().filter(|v| q.keeps(v)).collect();
    views.truncate(q.limit);
    RunsPage {
        runs: views,
        announcement,
        relays: urls,
        reach: fetched.reach,
    }
}

/// Fetch the jobs, their worker events and the 5402s of `runs`; one view
/// per run, in the order given.
async fn join_runs(
    client: &Client,
    urls: &[RelayUrl],
    runs: &[RunEvent],
    deadline: &Deadline,
) -> Vec<RunView> {
    if runs.is_empty() {
        return Vec::new();
    }
    let ids: Vec<EventId> = runs.iter().map(|r| r.id).collect();
    let around = vec![
        Filter::new()
            .kind(job_request_kind())
            .events(ids.iter().copied())
            .limit(ids.len() * 4),
        Filter::new()
            .kind(Kind::Custom(KIND_WORKFLOW_RESULT))
            .events(ids.iter().copied())
            .limit(ids.len() * 4),
    ];
    let events = relays::fetch(client, urls, around, deadline.share(2)).await;
    let results: Vec<ResultEvent> = events
        .iter()
        .filter_map(|e| ResultEvent::from_event(e).ok())
        .collect();
    let jobs = attach_jobs(runs, &events);
    let job_ids: Vec<EventId> = jobs.values().map(|e| e.id).collect();
    let worker_side = if job_ids.is_empty() || deadline.expired() {
        Vec::new()
    } else {
        let filters = crate::follow::worker_side_filters(&job_ids);
        relays::fetch(client, urls, filters, deadline.remaining()).await
    };
    let trackers: HashMap<EventId, JobTracker> = jobs
        .iter()
        .map(|(run, req)| {
            let mut t = JobTracker::new(req.id);
            t.ingest(req);
            let mut side: Vec<&Event> = worker_side.iter().collect();
            side.sort_by_key(|e| e.created_at);
            for e in side {
                t.ingest(e);
            }
            (*run, t)
        })
        .collect();
    runs.iter()
        .map(|r| view(r, trackers.get(&r.id), &results))
        .collect()
}
