//! The `jobs` table: each job, written with its signed event and token
//! before anything is published, and read back by id, key or time.

use nostr_sdk::prelude::*;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now, Journal};
use crate::error::{Error, Result};
use crate::job_state::JobState;

/// A new job about to be published.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The signed request.
    pub event: &'a Event,
    /// Worker.
    pub worker: PublicKey,
    /// Command.
    pub cmd: &'a str,
    /// Arguments.
    pub args: &'a [String],
    /// The token (kept: it is money).
    pub token: Option<&'a str>,
    /// Amount, unit, mint of the token.
    pub payment: Option<&'a crate::payment::TokenInfo>,
    /// Relays it is meant for.
    pub relays: &'a [RelayUrl],
    /// Idempotency key, if the caller gave one.
    pub idempotency_key: Option<&'a str>,
    /// Hash of the job's content (see `dispatch::JobSpec::content_hash`).
    pub content_hash: &'a str,
    /// The job this one reruns.
    pub rerun_of: Option<EventId>,
}

/// A job as the journal knows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Request time.
    pub created_at: u64,
    /// Requester.
    pub author: String,
    /// Worker.
    pub worker: String,
    /// Command.
    pub cmd: String,
    /// Arguments.
    pub args: Vec<String>,
    /// The signed event (JSON).
    #[serde(skip)]
    pub event: String,
    /// The token; never serialised.
    #[serde(skip)]
    pub token: Option<String>,
    /// Amount paid.
    pub amount: Option<u64>,
    /// Unit.
    pub unit: Option<String>,
    /// Mint.
    pub mint: Option<String>,
    /// Relays it was meant for.
    pub relays: Vec<String>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Content hash.
    #[serde(skip)]
    pub content_hash: String,
    /// Job it reruns.
    pub rerun_of: Option<String>,
    /// Last known state (`unpublished` until a relay accepted it).
    pub state: JobState,
    /// Whether any relay ever accepted it.
    pub published: bool,
    /// Exit code, once a result was seen.
    pub exit_code: Option<i64>,
    /// Run time, once a result was seen.
    pub duration: Option<f64>,
    /// Change token from the result; never serialised.
    #[serde(skip)]
    pub change_token: Option<String>,
    /// Amount of that change.
    pub change_amount: Option<u64>,
    /// Last change to this row.
    pub updated_at: u64,
}

impl JobRecord {
    /// The stored signed event.
    pub fn signed_event(&self) -> Result<Event> {
        Event::from_json(&self.event).map_err(|e| {
            Error::Journal(format!("job {}: stored event is unreadable: {e}", self.id))
        })
    }
}

impl Journal {
    /// Record a job before it is published. Durable when this returns.
    pub fn record_dispatch(&mut self, j: &NewJob<'_>) -> Result<()> {
        self.record_dispatches(std::slice::from_ref(j))
    }

    /// Add relays (the worker's inbox, found after the job was journaled)
    /// to where a journaled job goes, so `republish` knows them too.
    pub fn add_job_relays(&mut self, id: &EventId, extra: &[RelayUrl]) -> Result<()> {
        let Some(rec) = self.get(id)? else {
            return Ok(());
        };
        let mut all = rec.relays;
        for u in extra {
            let u = u.to_string();
            if !all.contains(&u) {
                all.push(u);
            }
        }
        let json = serde_json::to_string(&all).unwrap_or_default();
        self.conn
            .execute(
                "UPDATE jobs SET relays = ?2 WHERE id = ?1",
                params![id.to_hex(), json],
            )
            .map_err(Self::q)?;
        Ok(())
    }

    /// Record many jobs in one transaction (one fsync), all or none. A
    /// token the wallet made for a job is marked `journaled` in the same
    /// transaction.
    pub fn record_dispatches(&mut self, jobs: &[NewJob<'_>]) -> Result<()> {
        let tx = self.write_tx()?;
        for j in jobs {
            Self::insert_with_send(&tx, j)?;
        }
        tx.commit().map_err(Self::q)
    }

    /// Insert a job; a token the wallet made for it becomes `journaled`.
    pub(super) fn insert_with_send(tx: &rusqlite::Transaction<'_>, j: &NewJob<'_>) -> Result<()> {
        Self::insert_job(tx, j)?;
        if let Some(token) = j.token {
            tx.execute(
                "UPDATE sends SET state = 'journaled', job_id = ?2, updated_at = ?3
                 WHERE token = ?1 AND state IN ('prepared', 'created')",
                params![token, j.event.id.to_hex(), now() as i64],
            )
            .map_err(Self::q)?;
        }
        Ok(())
    }

    fn insert_job(tx: &rusqlite::Transaction<'_>, j: &NewJob<'_>) -> Result<()> {
        let t = now();
        tx.execute(
            "INSERT INTO jobs (id, created_at, author, worker, cmd, args, event, token, amount, unit, mint,
                               relays, idempotency_key, content_hash, rerun_of, state, published, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 'unpublished', 0, ?16)",
            params![
                j.event.id.to_hex(),
                j.event.created_at.as_secs() as i64,
                j.event.pubkey.to_hex(),
                j.worker.to_hex(),
                j.cmd,
                serde_json::to_string(j.args).unwrap_or_default(),
                j.event.as_json(),
                j.token,
                j.payment.map(|p| p.amount as i64),
                j.payment.map(|p| p.unit.clone()),
                j.payment.map(|p| p.mint.clone()),
                serde_json::to_string(&j.relays.iter().map(|r| r.to_string()).collect::<Vec<_>>())
                    .unwrap_or_default(),
                j.idempotency_key,
                j.content_hash,
                j.rerun_of.map(|r| r.to_hex()),
                t as i64,
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Journal(format!("job {} is already in the journal", j.event.id))
            }
            e => Self::q(e),
        })?;
        let msg = match j.rerun_of {
            Some(old) => format!("signed and journaled (rerun of {old})"),
            None => "signed and journaled".to_string(),
        };
        tx.execute(
            "INSERT INTO timeline (job_id, at, source, state, message) VALUES (?1, ?2, 'journal', 'unpublished', ?3)",
            params![j.event.id.to_hex(), t as i64, msg],
        )
        .map_err(Self::q)?;
        Ok(())
    }

    const COLS: &'static str = "id, created_at, author, worker, cmd, args, event, token, amount, unit, mint, relays,
        idempotency_key, content_hash, rerun_of, state, published, exit_code, duration, change_token,
        change_amount, updated_at";

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
        let json_list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default();
        Ok(JobRecord {
            id: r.get(0)?,
            created_at: r.get::<_, i64>(1)? as u64,
            author: r.get(2)?,
            worker: r.get(3)?,
            cmd: r.get(4)?,
            args: json_list(r.get(5)?),
            event: r.get(6)?,
            token: r.get(7)?,
            amount: r.get::<_, Option<i64>>(8)?.map(|a| a as u64),
            unit: r.get(9)?,
            mint: r.get(10)?,
            relays: json_list(r.get(11)?),
            idempotency_key: r.get(12)?,
            content_hash: r.get(13)?,
            rerun_of: r.get(14)?,
            state: r.get(15)?,
            published: r.get(16)?,
            exit_code: r.get(17)?,
            duration: r.get(18)?,
            change_token: r.get(19)?,
            change_amount: r.get::<_, Option<i64>>(20)?.map(|a| a as u64),
            updated_at: r.get::<_, i64>(21)? as u64,
        })
    }

    /// A job by id.
    pub fn get(&self, id: &EventId) -> Result<Option<JobRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM jobs WHERE id = ?1", Self::COLS),
                [id.to_hex()],
                Self::row,
            )
            .optional()
            .map_err(Self::q)
    }

    /// A job by idempotency key.
    pub fn by_idempotency_key(&self, key: &str) -> Result<Option<JobRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM jobs WHERE idempotency_key = ?1", Self::COLS),
                [key],
                Self::row,
            )
            .optional()
            .map_err(Self::q)
    }

    /// Jobs newest first, optionally bounded by creation time.
    pub fn list(
        &self,
        since: Option<u64>,
        until: Option<u64>,
        limit: usize,
    ) -> Result<Vec<JobRecord>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM jobs WHERE created_at >= ?1 AND created_at <= ?2
                 ORDER BY created_at DESC, id LIMIT ?3",
                Self::COLS
            ))
            .map_err(Self::q)?;
        let rows = st
            .query_map(
                params![
                    since.unwrap_or(0) as i64,
                    until.map(|u| u as i64).unwrap_or(i64::MAX),
                    limit.min(i64::MAX as usize) as i64
                ],
                Self::row,
            )
            .map_err(Self::q)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Self::q)
    }

    /// Every job, for statistics (created at or after `since`).
    pub fn all_since(&self, since: u64) -> Result<Vec<JobRecord>> {
        self.list(Some(since), None, usize::MAX)
    }

    /// Jobs no relay has accepted yet, oldest first.
    pub fn unpublished(&self) -> Result<Vec<JobRecord>> {
        // A job whose pre-flight checks have not passed (`checking`) is
        // not one to publish.
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM jobs WHERE published = 0 AND state != 'checking' ORDER BY created_at, id",
                Self::COLS
            ))
            .map_err(Self::q)?;
        let rows = st.query_map([], Self::row).map_err(Self::q)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Self::q)
    }
}
