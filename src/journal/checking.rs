//! Jobs journaled while their pre-flight checks run (`rerun`'s one round,
//! `crate::round`): such a job is `checking` on disk until the checks
//! pass, and only then `unpublished` and sendable. `republish` never
//! picks a `checking` job, and one its checks refused (or whose run was
//! cut off) is withdrawn: it was never sent. Reads as
//! [`JobState::Unpublished`](crate::job_state::JobState::Unpublished).

use nostr_sdk::prelude::*;
use rusqlite::{params, OptionalExtension};

use super::jobs::NewJob;
use super::{now, Journal};
use crate::error::Result;

impl Journal {
    /// Record a job whose checks are still running (`checking`), with its
    /// wallet token marked `journaled`, in one transaction that is not
    /// flushed to the disk: until its checks pass, the job guards nothing
    /// a crash could lose (nothing was sent; its token, handed in, is
    /// still the caller's), and [`Self::checks_passed`], whose flush must
    /// come before the send, makes both writes durable at once.
    pub fn record_checking(&mut self, j: &NewJob<'_>) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA synchronous=OFF;")
            .map_err(Self::q)?;
        let recorded = self.write_tx().and_then(|tx| {
            Self::insert_with_send(&tx, j)?;
            tx.execute(
                "UPDATE jobs SET state = 'checking' WHERE id = ?1",
                params![j.event.id.to_hex()],
            )
            .map_err(Self::q)?;
            tx.commit().map_err(Self::q)
        });
        let durable_again = self
            .conn
            .execute_batch("PRAGMA synchronous=FULL;")
            .map_err(Self::q);
        recorded.and(durable_again)
    }

    /// The checks passed: the job may be sent. Flushed to the disk, with
    /// the job itself ([`Self::record_checking`]), before it is sent.
    pub fn checks_passed(&mut self, id: &EventId) -> Result<()> {
        self.conn
            .execute(
                "UPDATE jobs SET state = 'unpublished' WHERE id = ?1 AND state = 'checking'",
                params![id.to_hex()],
            )
            .map_err(Self::q)?;
        Ok(())
    }

    /// Whether `id` is journaled and still `checking`.
    pub fn is_checking(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM jobs WHERE id = ?1 AND state = 'checking'",
                params![id],
                |_| Ok(()),
            )
            .optional()
            .map_err(Self::q)?
            .is_some())
    }

    /// Take back a `checking` job (never sent): its timeline goes, and a
    /// wallet token it carried is back to `created` (handed out, in no
    /// job), as before it was journaled. Anything else is left alone.
    pub fn withdraw(&mut self, id: &EventId) -> Result<()> {
        let tx = self.write_tx()?;
        let hex = id.to_hex();
        let checking: bool = tx
            .query_row(
                "SELECT 1 FROM jobs WHERE id = ?1 AND state = 'checking' AND published = 0",
                params![hex],
                |_| Ok(()),
            )
            .optional()
            .map_err(Self::q)?
            .is_some();
        if checking {
            tx.execute(
                "UPDATE sends SET state = 'created', job_id = NULL, updated_at = ?2
                 WHERE job_id = ?1 AND state = 'journaled'",
                params![hex, now() as i64],
            )
            .map_err(Self::q)?;
            tx.execute("DELETE FROM timeline WHERE job_id = ?1", params![hex])
                .map_err(Self::q)?;
            tx.execute("DELETE FROM relay_outcomes WHERE job_id = ?1", params![hex])
                .map_err(Self::q)?;
            tx.execute("DELETE FROM jobs WHERE id = ?1", params![hex])
                .map_err(Self::q)?;
        }
        tx.commit().map_err(Self::q)
    }
}
