//! The `timeline` and `relay_outcomes` tables: each relay's answer to a
//! publish and every state a job went through, appended, never rewritten.

use nostr_sdk::prelude::*;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now, Journal};
use crate::error::Result;
use crate::job_state::JobState;
use crate::relays::{RelayOutcome, RelayStatus};

/// One timeline entry.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// When (unix seconds).
    pub at: u64,
    /// `journal` (jobctl itself), `relay` or `worker`.
    pub source: String,
    /// State name.
    pub state: String,
    /// Message.
    pub message: String,
}

/// A stored relay outcome.
#[derive(Debug, Clone, Serialize)]
pub struct StoredOutcome {
    /// Relay URL.
    pub url: String,
    /// accepted / rejected / failed.
    pub status: RelayStatus,
    /// Relay's message.
    pub message: String,
    /// Latency.
    pub latency_ms: u64,
    /// When.
    pub at: u64,
}

impl Journal {
    /// Record each relay's outcome for a publish attempt.
    pub fn record_outcomes(&mut self, id: &EventId, outcomes: &[RelayOutcome]) -> Result<()> {
        self.record_outcomes_many(&[(*id, outcomes.to_vec())])
    }

    /// Record the outcomes of many publish attempts in one transaction.
    pub fn record_outcomes_many(&mut self, all: &[(EventId, Vec<RelayOutcome>)]) -> Result<()> {
        let tx = self.write_tx()?;
        for (id, outcomes) in all {
            Self::insert_outcomes(&tx, id, outcomes)?;
        }
        tx.commit().map_err(Self::q)
    }

    fn insert_outcomes(
        tx: &rusqlite::Transaction<'_>,
        id: &EventId,
        outcomes: &[RelayOutcome],
    ) -> Result<()> {
        let t = now() as i64;
        let hex = id.to_hex();
        for o in outcomes {
            // An earlier acceptance is never downgraded by a later failure.
            tx.execute(
                "INSERT INTO relay_outcomes (job_id, url, status, message, latency_ms, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(job_id, url) DO UPDATE SET
                   status = excluded.status, message = excluded.message,
                   latency_ms = excluded.latency_ms, at = excluded.at
                 WHERE relay_outcomes.status != 'accepted'",
                params![
                    hex,
                    o.url,
                    o.status.to_string(),
                    o.message,
                    o.latency_ms as i64,
                    t
                ],
            )
            .map_err(Self::q)?;
        }
        let accepted = outcomes
            .iter()
            .filter(|o| o.status == RelayStatus::Accepted)
            .count();
        let was_published: bool = tx
            .query_row("SELECT published FROM jobs WHERE id = ?1", [&hex], |r| {
                r.get(0)
            })
            .map_err(Self::q)?;
        let msg = format!(
            "publish attempt: {accepted}/{} relays accepted",
            outcomes.len()
        );
        let state = if was_published || accepted > 0 {
            JobState::Pending
        } else {
            JobState::Unpublished
        };
        tx.execute(
            "INSERT INTO timeline (job_id, at, source, state, message) VALUES (?1, ?2, 'relay', ?3, ?4)",
            params![hex, t, state, msg],
        )
        .map_err(Self::q)?;
        if accepted > 0 && !was_published {
            tx.execute(
                "UPDATE jobs SET published = 1, state = 'pending', updated_at = ?2 WHERE id = ?1",
                params![hex, t],
            )
            .map_err(Self::q)?;
        }
        Ok(())
    }

    /// Record an observed state; appends to the timeline only when it is
    /// not older than the newest worker entry already recorded and differs
    /// from the current state (so replays and late arrivals add nothing).
    /// Returns whether it did.
    #[allow(clippy::too_many_arguments)]
    pub fn record_state(
        &mut self,
        id: &EventId,
        state: JobState,
        message: &str,
        at: u64,
        exit_code: Option<i64>,
        duration: Option<f64>,
        change: Option<(&str, Option<u64>)>,
    ) -> Result<bool> {
        let hex = id.to_hex();
        let current: Option<(JobState, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT state, exit_code FROM jobs WHERE id = ?1",
                [&hex],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Self::q)?;
        let Some((cur, cur_exit)) = current else {
            return Ok(false); // not one of ours
        };
        let newest: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(at) FROM timeline WHERE job_id = ?1 AND source = 'worker'",
                [&hex],
                |r| r.get(0),
            )
            .map_err(Self::q)?;
        if newest.is_some_and(|n| (at as i64) < n) {
            return Ok(false);
        }
        if cur == state && (exit_code.is_none() || cur_exit == exit_code) {
            return Ok(false);
        }
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO timeline (job_id, at, source, state, message) VALUES (?1, ?2, 'worker', ?3, ?4)",
            params![hex, at as i64, state, message],
        )
        .map_err(Self::q)?;
        tx.execute(
            "UPDATE jobs SET state = ?2, published = 1, updated_at = ?3,
                    exit_code = COALESCE(?4, exit_code), duration = COALESCE(?5, duration),
                    change_token = COALESCE(?6, change_token), change_amount = COALESCE(?7, change_amount)
             WHERE id = ?1",
            params![
                hex,
                state,
                now() as i64,
                exit_code,
                duration,
                change.map(|c| c.0),
                change.and_then(|c| c.1).map(|a| a as i64)
            ],
        )
        .map_err(Self::q)?;
        tx.commit().map_err(Self::q)?;
        Ok(true)
    }

    /// Add a note to a job's timeline (e.g. a cancel request).
    pub fn note(&mut self, id: &EventId, state: &str, message: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO timeline (job_id, at, source, state, message)
                 SELECT ?1, ?2, 'journal', ?3, ?4 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1)",
                params![id.to_hex(), now() as i64, state, message],
            )
            .map_err(Self::q)?;
        Ok(())
    }
    /// A job's timeline, oldest first.
    pub fn timeline(&self, id: &EventId) -> Result<Vec<TimelineEntry>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT at, source, state, message FROM timeline WHERE job_id = ?1 ORDER BY seq",
            )
            .map_err(Self::q)?;
        let rows = st
            .query_map([id.to_hex()], |r| {
                Ok(TimelineEntry {
                    at: r.get::<_, i64>(0)? as u64,
                    source: r.get(1)?,
                    state: r.get(2)?,
                    message: r.get(3)?,
                })
            })
            .map_err(Self::q)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Self::q)
    }

    /// The stored relay outcomes of a job.
    pub fn outcomes(&self, id: &EventId) -> Result<Vec<StoredOutcome>> {
        let mut st = self
            .conn
            .prepare("SELECT url, status, message, latency_ms, at FROM relay_outcomes WHERE job_id = ?1 ORDER BY url")
            .map_err(Self::q)?;
        let rows = st
            .query_map([id.to_hex()], |r| {
                Ok(StoredOutcome {
                    url: r.get(0)?,
                    status: r.get::<_, String>(1)?.parse().map_err(|e: String| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            e.into(),
                        )
                    })?,
                    message: r.get(2)?,
                    latency_ms: r.get::<_, i64>(3)? as u64,
                    at: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(Self::q)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Self::q)
    }

    /// Relays that accepted a job.
    pub fn accepted_relays(&self, id: &EventId) -> Result<Vec<String>> {
        Ok(self
            .outcomes(id)?
            .into_iter()
            .filter(|o| o.status == RelayStatus::Accepted)
            .map(|o| o.url)
            .collect())
    }
}
