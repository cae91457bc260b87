//! What `list` shows: a page of the user's jobs, from the relays merged
//! with the journal (our jobs the relays do not have, unpublished or
//! dropped, still show) or from the journal alone, newest first, then
//! filtered by state and worker. Returns data; rendering is the caller's.

use std::collections::HashMap;

use nostr_sdk::prelude::*;

use crate::deadline::Deadline;
use crate::error::Result;
use crate::follow::{self, ListQuery};
use crate::journal::Journal;
use crate::protocol::JobState;
use crate::relays::{self, Reach};
use crate::state::{JobTracker, JobView};
use crate::tracking;

/// The wanted states of `--status`: state names (normalised the way
/// worker statuses are), `unknown`, or `stale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFilter(Vec<String>);

impl StateFilter {
    /// Parse a comma-separated list; an error names the bad state.
    pub fn parse(s: &str) -> std::result::Result<StateFilter, String> {
        s.split(',')
            .map(|x| x.trim().to_ascii_lowercase())
            .filter(|x| !x.is_empty())
            .map(|x| match (x.as_str(), JobState::parse(&x)) {
                ("stale", _) | ("unknown", _) => Ok(x),
                (_, JobState::Unknown) => Err(format!("`{x}` is not a job state")),
                (_, st) => Ok(st.as_str().to_string()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(StateFilter)
    }

    /// Whether a job is in one of the wanted states.
    pub fn matches(&self, v: &JobView) -> bool {
        self.0.iter().any(|s| {
            if s == "stale" {
                v.stale
            } else {
                s == v.state.as_str()
            }
        })
    }
}

/// Which jobs of a page to keep.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only these states.
    pub states: Option<StateFilter>,
    /// Only jobs for this worker.
    pub worker: Option<PublicKey>,
}

impl JobFilter {
    /// Whether `v` passes.
    pub fn keeps(&self, v: &JobView) -> bool {
        self.worker
            .is_none_or(|w| v.worker.as_deref() == Some(&w.to_hex()))
            && self.states.as_ref().is_none_or(|s| s.matches(v))
    }
}

/// One page of jobs, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobPage {
    /// The jobs.
    pub views: Vec<JobView>,
    /// The page came back full: more jobs may be older.
    pub full: bool,
    /// The creation time of the oldest job fetched (before merging).
    pub oldest: Option<u64>,
    /// Worker names by pubkey hex (named advertisements only).
    pub names: HashMap<String, String>,
}

impl JobPage {
    /// A page from the journal alone (`list --local`).
    pub fn from_journal(
        j: &Journal,
        since: Option<u64>,
        until: Option<u64>,
        limit: usize,
        now: Timestamp,
    ) -> Result<JobPage> {
        let recs = j.list(since, until, limit)?;
        Ok(JobPage {
            full: recs.len() >= limit,
            oldest: recs.iter().map(|r| r.created_at).min(),
            views: recs
                .iter()
                .map(|r| tracking::view_of_record(r, now))
                .collect(),
            names: HashMap::new(),
        })
    }

    /// A page from what the relays returned for a query of `limit`.
    pub fn from_trackers(trackers: &[JobTracker], limit: usize, now: Timestamp) -> JobPage {
        JobPage {
            full: trackers.len() >= limit,
            oldest: trackers
                .iter()
                .filter_map(|t| t.request.as_ref())
                .map(|r| r.created_at.as_secs())
                .min(),
            views: trackers.iter().map(|t| t.view(now)).collect(),
            names: HashMap::new(),
        }
    }

    /// Merge journaled jobs into a page from the relays: within the
    /// page's time range, those the relays did not return are added; then
    /// newest first again, cut to `limit`.
    pub fn merge_journal(
        &mut self,
        j: &Journal,
        since: Option<u64>,
        until: Option<u64>,
        limit: usize,
        now: Timestamp,
    ) -> Result<()> {
        let lower = if self.full {
            self.oldest.map(|o| o.max(since.unwrap_or(0)))
        } else {
            since
        };
        let recs = j.list(lower, until, limit)?;
        let extra = recs.iter().map(|r| tracking::view_of_record(r, now));
        self.add_missing(extra.collect(), limit);
        Ok(())
    }

    /// Add the jobs the page lacks, then newest first, cut to `limit`.
    fn add_missing(&mut self, extra: Vec<JobView>, limit: usize) {
        for v in extra {
            if !self.views.iter().any(|o| o.id == v.id) {
                self.views.push(v);
            }
        }
        self.views
            .sort_by(|x, y| y.created_at.cmp(&x.created_at).then(x.id.cmp(&y.id)));
        self.views.truncate(limit);
    }

    /// Keep only the jobs `f` keeps.
    pub fn filter(&mut self, f: &JobFilter) {
        self.views.retain(|v| f.keeps(v));
    }

    /// The `--until` of the next page, when this one was full.
    pub fn next_until(&self) -> Option<u64> {
        self.oldest
            .filter(|_| self.full)
            .map(|o| o.saturating_sub(1))
    }
}

/// What the relays returned for a `list`.
#[derive(Debug)]
pub struct Fetched {
    /// The jobs, newest first, with their statuses and results.
    pub trackers: Vec<JobTracker>,
    /// Which relays answered the request lookup.
    pub reach: Reach,
    /// Worker names by pubkey hex.
    pub names: HashMap<String, String>,
}

/// Fetch a page of jobs from the relays, then (a nicety, with what is
/// left of `deadline`) the names of their workers.
pub async fn fetch(
    client: &Client,
    urls: &[RelayUrl],
    q: &ListQuery,
    deadline: &Deadline,
) -> Fetched {
    let (trackers, reach) = follow::list_jobs_reach(client, urls, q, deadline.remaining()).await;
    let mut workers: Vec<PublicKey> = trackers.iter().filter_map(|t| t.worker()).collect();
    workers.sort();
    workers.dedup();
    let ads = if deadline.expired() {
        Vec::new()
    } else {
        follow::workers(client, urls, Some(workers), deadline.remaining()).await
    };
    relays::shutdown(client).await;
    let names = ads
        .into_iter()
        .filter(|a| !a.name.is_empty())
        .map(|a| (a.pubkey.to_hex(), a.name))
        .collect();
    Fetched {
        trackers,
        reach,
        names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, created: u64, state: JobState, worker: &str) -> JobView {
        JobView {
            found: true,
            created_at: Some(created),
            worker: Some(worker.into()),
            ..JobView::blank(id.into(), state)
        }
    }

    #[test]
    fn states_are_normalised_and_bad_ones_named() {
        let f = StateFilter::parse("Success, stale,,unknown").expect("parse");
        assert_eq!(f.0, vec!["success", "stale", "unknown"]);
        assert_eq!(
            StateFilter::parse("success,flying").unwrap_err(),
            "`flying` is not a job state"
        );
        let mut stale = view("a", 1, JobState::Pending, "w");
        assert!(!f.matches(&stale));
        stale.stale = true;
        assert!(f.matches(&stale));
    }

    #[test]
    fn journal_only_jobs_merge_newest_first_within_the_limit() {
        let mut page = JobPage {
            views: vec![view("b", 20, JobState::Success, "w1")],
            full: false,
            oldest: Some(20),
            names: HashMap::new(),
        };
        let extra = vec![
            view("c", 30, JobState::Unpublished, "w2"),
            view("b", 20, JobState::Unpublished, "w2"),
            view("a", 10, JobState::Unpublished, "w2"),
        ];
        page.add_missing(extra, 2);
        let ids: Vec<&str> = page.views.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, vec!["c", "b"]);
        assert_eq!(page.views[0].state, JobState::Unpublished);
        // The relay's view of "b" wins over the journal's.
        assert_eq!(page.views[1].state, JobState::Success);
        page.filter(&JobFilter {
            states: Some(StateFilter::parse("unpublished").expect("parse")),
            worker: None,
        });
        assert_eq!(page.views.len(), 1);
        assert_eq!(page.next_until(), None);
        page.full = true;
        assert_eq!(page.next_until(), Some(19));
    }

    #[test]
    fn a_journal_only_job_joins_the_relays_page() {
        use crate::state::tests::{act_request, bare};
        let (user, worker) = (Keys::generate(), Keys::generate());
        let ev = act_request(&user, &worker, bare());
        let dir = tempfile::tempdir().expect("tempdir");
        let j = crate::tracking::tests::journal_with(dir.path(), &ev, &worker);
        let now = Timestamp::from(ev.created_at.as_secs() + 5);
        let mut page = JobPage::from_trackers(&[], 10, now);
        assert!(!page.full && page.views.is_empty());
        page.merge_journal(&j, None, None, 10, now).expect("merge");
        assert_eq!(page.views.len(), 1);
        assert_eq!(page.views[0].id, ev.id.to_hex());
        assert_eq!(page.views[0].state, JobState::Unpublished);
        // Outside the asked time range it stays out.
        let mut later = JobPage::default();
        let after = Some(ev.created_at.as_secs() + 1);
        later
            .merge_journal(&j, after, None, 10, now)
            .expect("merge");
        assert!(later.views.is_empty());
    }
}
