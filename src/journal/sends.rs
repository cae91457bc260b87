//! The `sends` table: every token the wallet makes, recorded before the
//! mint is asked, so a cut-off send can be found and taken back.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now, Journal, SendState};
use crate::error::Result;

/// A token the wallet made, as the journal knows it.
#[derive(Debug, Clone, Serialize)]
pub struct SendRecord {
    /// The wallet's operation id.
    pub op_id: String,
    /// Mint.
    pub mint: String,
    /// Amount asked for.
    pub amount: u64,
    /// `job`, `wallet-send` or `lock`.
    pub purpose: String,
    /// Where the token is (see [`SendState`]).
    pub state: SendState,
    /// The token; never serialised.
    #[serde(skip)]
    pub token: Option<String>,
    /// The job carrying it.
    pub job_id: Option<String>,
    /// Detail.
    pub message: String,
    /// When.
    pub created_at: u64,
}

impl Journal {
    /// Record that the wallet is about to make a token (before the mint is
    /// asked): a crash from here on leaves a trace `wallet check` follows.
    pub fn send_prepared(
        &mut self,
        op_id: &str,
        mint: &str,
        amount: u64,
        purpose: &str,
    ) -> Result<()> {
        let t = now() as i64;
        self.conn
            .execute(
                "INSERT INTO sends (op_id, mint, amount, purpose, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'prepared', ?5, ?5)
                 ON CONFLICT(op_id) DO NOTHING",
                params![op_id, mint, amount as i64, purpose, t],
            )
            .map_err(Self::q)?;
        Ok(())
    }

    /// Record the token a prepared send produced.
    pub fn send_created(&mut self, op_id: &str, token: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE sends SET state = 'created', token = ?2, updated_at = ?3
                 WHERE op_id = ?1 AND state = 'prepared'",
                params![op_id, token, now() as i64],
            )
            .map_err(Self::q)?;
        Ok(())
    }

    /// Move a send to `state` (`delivered`, `reclaimed`, `spent`, ...).
    pub fn send_state(&mut self, op_id: &str, state: SendState, message: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE sends SET state = ?2, message = ?3, updated_at = ?4 WHERE op_id = ?1",
                params![op_id, state, message, now() as i64],
            )
            .map_err(Self::q)?;
        Ok(())
    }

    fn send_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SendRecord> {
        Ok(SendRecord {
            op_id: r.get(0)?,
            mint: r.get(1)?,
            amount: r.get::<_, i64>(2)? as u64,
            purpose: r.get(3)?,
            state: r.get(4)?,
            token: r.get(5)?,
            job_id: r.get(6)?,
            message: r.get(7)?,
            created_at: r.get::<_, i64>(8)? as u64,
        })
    }

    /// A send by the wallet's operation id.
    pub fn send(&self, op_id: &str) -> Result<Option<SendRecord>> {
        self.conn
            .query_row(
                "SELECT op_id, mint, amount, purpose, state, token, job_id, message, created_at
                 FROM sends WHERE op_id = ?1",
                [op_id],
                Self::send_row,
            )
            .optional()
            .map_err(Self::q)
    }

    /// Every recorded send, oldest first.
    pub fn sends(&self) -> Result<Vec<SendRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT op_id, mint, amount, purpose, state, token, job_id, message, created_at
                 FROM sends ORDER BY created_at, op_id",
            )
            .map_err(Self::q)?;
        let rows = st.query_map([], Self::send_row).map_err(Self::q)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Self::q)
    }

    /// Whether a journaled job carries `token` as its payment.
    pub fn token_in_jobs(&self, token: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM jobs WHERE token = ?1 LIMIT 1",
                [token],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(Self::q)
    }
}
