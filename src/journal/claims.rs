//! The `claims` table: reclaim attempts. A job has at most one final
//! claim (`claimed` or `spent`); `failed` attempts may be retried.

use nostr_sdk::prelude::*;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{ClaimKind, ClaimStatus, Journal};
use crate::error::{Error, Result};

/// One reclaim attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    /// Job id.
    pub job_id: String,
    /// `change`, `payment` or `refund`.
    pub kind: ClaimKind,
    /// Amount credited (claimed) or not recovered (spent).
    pub amount: u64,
    /// Unit.
    pub unit: String,
    /// `claimed`, `spent` or `failed`.
    pub status: ClaimStatus,
    /// Detail.
    pub message: String,
    /// When.
    pub at: u64,
}

impl Journal {
    /// Record a reclaim attempt. A second final claim for one job is refused.
    pub fn record_claim(&mut self, c: &Claim) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO claims (job_id, kind, amount, unit, status, message, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![c.job_id, c.kind, c.amount as i64, c.unit, c.status, c.message, c.at as i64],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::Journal(format!("job {} was already reclaimed", c.job_id))
                }
                e => Self::q(e),
            })?;
        let _ = self.note(
            &EventId::from_hex(&c.job_id).map_err(|e| Error::Journal(e.to_string()))?,
            &format!("reclaim-{}", c.status),
            &format!("{} {} {}: {}", c.kind, c.amount, c.unit, c.message),
        );
        Ok(())
    }

    /// A claims row (job_id, kind, amount, unit, status, message, at).
    fn claim_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Claim> {
        Ok(Claim {
            job_id: r.get(0)?,
            kind: r.get(1)?,
            amount: r.get::<_, i64>(2)? as u64,
            unit: r.get(3)?,
            status: r.get(4)?,
            message: r.get(5)?,
            at: r.get::<_, i64>(6)? as u64,
        })
    }

    /// Final claims of jobs created at or after `since`: (job id, claim).
    pub fn claims_since(&self, since: u64) -> Result<Vec<Claim>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT c.job_id, c.kind, c.amount, c.unit, c.status, c.message, c.at
                 FROM claims c JOIN jobs j ON j.id = c.job_id
                 WHERE j.created_at >= ?1 AND c.status IN ('claimed', 'spent')",
            )
            .map_err(Self::q)?;
        let rows = st
            .query_map([since as i64], Self::claim_row)
            .map_err(Self::q)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Self::q)
    }

    /// The final claim of a job, if any.
    pub fn final_claim(&self, id: &EventId) -> Result<Option<Claim>> {
        self.conn
            .query_row(
                "SELECT job_id, kind, amount, unit, status, message, at FROM claims
                 WHERE job_id = ?1 AND status IN ('claimed', 'spent')",
                [id.to_hex()],
                Self::claim_row,
            )
            .optional()
            .map_err(Self::q)
    }
}
