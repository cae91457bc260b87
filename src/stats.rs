//! `stats`: jobs by status, success rate, median run time and money
//! (paid, change, held in unpublished jobs, reclaimed, lost), computed
//! from the journal, overall and per worker.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::journal::{Claim, JobRecord, Journal};

/// Statistics over a set of journaled jobs.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Jobs.
    pub jobs: usize,
    /// Count per state.
    pub by_status: BTreeMap<String, usize>,
    /// success / (success + failed + error), when any finished.
    pub success_rate: Option<f64>,
    /// Median run time of jobs with a result.
    pub median_duration: Option<f64>,
    /// Paid per unit (published jobs).
    pub paid: BTreeMap<String, u64>,
    /// Change returned per unit.
    pub change_returned: BTreeMap<String, u64>,
    /// Paid for jobs that never reached a relay (still held in the journal).
    pub unpublished_amount: BTreeMap<String, u64>,
    /// Redeemed back into the wallet by `reclaim` (change, refunds).
    pub reclaimed: BTreeMap<String, u64>,
    /// Owed back but already spent when reclaimed.
    pub lost: BTreeMap<String, u64>,
}

impl Stats {
    /// How many jobs are in state `k`.
    pub fn count(&self, k: &str) -> usize {
        self.by_status.get(k).copied().unwrap_or(0)
    }
}

/// Every job's statistics, and each worker's (keyed by hex pubkey).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// All jobs.
    pub overall: Stats,
    /// Per worker.
    pub workers: BTreeMap<String, Stats>,
}

/// The report over the jobs created at or after `since` (unix seconds);
/// no journal yet is an empty report.
pub fn from_journal(journal: Option<&Journal>, since: u64) -> Result<Report> {
    let (records, claims) = match journal {
        Some(j) => (j.all_since(since)?, j.claims_since(since)?),
        None => (Vec::new(), Vec::new()),
    };
    Ok(report(&records, &claims))
}

/// The report over `records`, with the reclaim `claims` made for them.
pub fn report(records: &[JobRecord], claims: &[Claim]) -> Report {
    let all: Vec<&JobRecord> = records.iter().collect();
    let mut per_worker: BTreeMap<String, Vec<&JobRecord>> = BTreeMap::new();
    for r in records {
        per_worker.entry(r.worker.clone()).or_default().push(r);
    }
    Report {
        overall: compute(&all, claims),
        workers: per_worker
            .iter()
            .map(|(w, rs)| (w.clone(), compute(rs, claims)))
            .collect(),
    }
}

/// Statistics over `records`; `claims` for other jobs are ignored.
pub fn compute(records: &[&JobRecord], claims: &[Claim]) -> Stats {
    let mut s = Stats {
        jobs: records.len(),
        ..Default::default()
    };
    let mut durations = Vec::new();
    for r in records {
        *s.by_status.entry(r.state.as_str().to_string()).or_default() += 1;
        if let Some(d) = r.duration {
            durations.push(d);
        }
        let unit = r.unit.clone().unwrap_or_else(|| "sat".into());
        if let Some(amt) = r.amount {
            let bucket = if r.published {
                &mut s.paid
            } else {
                &mut s.unpublished_amount
            };
            *bucket.entry(unit.clone()).or_default() += amt;
        }
        if let Some(c) = r.change_amount {
            *s.change_returned.entry(unit).or_default() += c;
        }
    }
    for c in claims
        .iter()
        .filter(|c| records.iter().any(|r| r.id == c.job_id))
    {
        let bucket = if c.status == crate::journal::ClaimStatus::Claimed {
            &mut s.reclaimed
        } else {
            &mut s.lost
        };
        *bucket.entry(c.unit.clone()).or_default() += c.amount;
    }
    let finished = s.count("success") + s.count("failed") + s.count("error");
    if finished > 0 {
        s.success_rate = Some(s.count("success") as f64 / finished as f64);
    }
    s.median_duration = median(durations);
    s
}

/// The median, `None` of nothing.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn an_empty_report_has_no_rate() {
        let r = report(&[], &[]);
        assert_eq!(r.overall.jobs, 0);
        assert!(r.overall.success_rate.is_none() && r.workers.is_empty());
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("overall").is_some() && v.get("workers").is_some());
    }
}
