//! The local journal: an SQLite database (mode 0600, versioned migrations)
//! holding every job jobctl dispatched. A job is written here, with its
//! signed event and its token, *before* anything is published, so a crash
//! or a dead network never loses a token or an intent. Then each relay's
//! outcome and every state transition jobctl observes are appended as a
//! timeline. A journal that cannot be opened or is corrupt is an error,
//! never a silent fresh start.
//!
//! This file opens, checks and migrates the database; one file per table
//! holds its rows and queries: [`jobs`], [`timeline`] (with the relay
//! outcomes), [`claims`], [`sends`]. The columns code branches on are typed
//! ([`crate::job_state::JobState`], [`ClaimKind`], [`ClaimStatus`],
//! [`SendState`]; see [`columns`]), stored as the same text as always.

use std::path::{Path, PathBuf};

use nostr_sdk::prelude::*;
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::settings::env::JOURNAL as ENV_JOURNAL;

mod checking;
pub mod claims;
pub mod columns;
pub mod jobs;
mod migrations;
pub mod sends;
#[cfg(test)]
mod tests;
pub mod timeline;

pub use claims::Claim;
pub use columns::{ClaimKind, ClaimStatus, SendState};
pub use jobs::{JobRecord, NewJob};
use migrations::MIGRATIONS;
pub use sends::SendRecord;
pub use timeline::{StoredOutcome, TimelineEntry};

/// The default journal path: `$XDG_DATA_HOME/jobctl/journal.sqlite`.
pub fn default_path() -> PathBuf {
    crate::config::data_dir().join("journal.sqlite")
}

/// `--journal` beats `JOBCTL_JOURNAL` beats the default.
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(ENV_JOURNAL)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(default_path)
}

/// The lock file serialising `rerun`s that share an idempotency key:
/// `<journal>.lock`.
pub fn lock_path(journal: &Path) -> PathBuf {
    let mut p = journal.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Take the journal's lock (see [`lock_path`]), waiting up to `wait`.
pub fn lock(journal: &Path, wait: std::time::Duration) -> Result<crate::keys::FileLock> {
    crate::keys::FileLock::acquire(&lock_path(journal), wait)
}

/// The journal.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

fn now() -> u64 {
    Timestamp::now().as_secs()
}

/// SQLITE_BUSY / SQLITE_LOCKED: another connection holds the file.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Journal {
    /// Open (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal> {
        let jerr = |msg: String| Error::Journal(format!("{}: {msg}", path.display()));
        if let Some(dir) = path.parent() {
            crate::keys::create_private_dir(dir)?;
        }
        // Create it 0600 before SQLite touches it (a no-op when it exists,
        // also when another process just created it).
        crate::keys::create_private_file(path).map_err(|e| jerr(format!("cannot create: {e}")))?;
        // It holds tokens, which are money: refuse it when others can read it.
        crate::keys::refuse_open("journal", path)?;
        let conn = Connection::open(path).map_err(|e| jerr(format!("cannot open: {e}")))?;
        let mut j = Journal {
            conn,
            path: path.to_path_buf(),
        };
        j.init().map_err(|e| match e {
            Error::Journal(m) => jerr(m),
            other => other,
        })?;
        Ok(j)
    }

    /// Open the journal at `path` only if it exists (readers never create
    /// it).
    pub fn open_existing(path: &Path) -> Result<Option<Journal>> {
        if path.exists() {
            Journal::open(path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for modules that own a table of their own
    /// (`crate::outbox`'s relay-list cache).
    pub(crate) fn sql(&self) -> &Connection {
        &self.conn
    }

    fn init(&mut self) -> Result<()> {
        let sql = |e: rusqlite::Error| Error::Journal(format!("not a usable jobctl journal ({e})"));
        // Concurrent processes wait for each other instead of failing.
        self.conn
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        // Reading the schema fails fast on a file that is not a database.
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        // Switching to WAL needs a moment alone with the file; on a first
        // run shared by many processes, retry while another holds it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match self.conn.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
            ) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(sql(e)),
            }
        }
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::Journal(format!(
                "written by a newer jobctl (schema {version}, this one knows {known})"
            )));
        }
        // A damaged page is reported by the query that reads it (SQLite's
        // "database disk image is malformed"): no whole-file check on every
        // open, whose cost grows with the journal.
        if version == known {
            return Ok(());
        }
        self.migrate(known)
    }

    /// From here on this connection only keeps books (relay verdicts, a
    /// cached relay list): its commits are ordered and survive a crash of
    /// the process but are not each flushed to the disk. Call it after the
    /// money-bearing commit (the job with its token) is durable.
    pub fn bookkeeping_only(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA synchronous=NORMAL;") {
            tracing::debug!("journal: {e}");
        }
    }

    /// Fold the write-ahead log into the database file now (a passive
    /// checkpoint: it waits for nobody), and close without doing it again:
    /// for a caller that can fold while it waits on something else, so
    /// that closing is instant. Only bookkeeping may follow (see
    /// [`Self::bookkeeping_only`]): what this connection writes after
    /// stays in the log, unflushed (it survives this process, and the next
    /// checkpoint, by any process, flushes the log before it copies from
    /// it), and this connection never checkpoints again.
    pub fn fold(&self) {
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::debug!("journal checkpoint: {e}");
        }
        if let Err(e) = self
            .conn
            .execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=OFF;")
        {
            tracing::debug!("journal: {e}");
        }
        if let Err(e) = self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        ) {
            tracing::debug!("journal: {e}");
        }
    }

    /// Run the migrations this file has not had yet.
    fn migrate(&mut self, known: i64) -> Result<()> {
        let sql = |e: rusqlite::Error| Error::Journal(format!("not a usable jobctl journal ({e})"));
        // Migrate under a write lock taken up front (BEGIN IMMEDIATE), and
        // re-read the version inside it: another process may have migrated
        // while this one waited.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if version > known {
            return Err(Error::Journal(format!(
                "written by a newer jobctl (schema {version}, this one knows {known})"
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(())
    }

    /// A write transaction holding the write lock from its start, so two
    /// writers queue on the busy timeout instead of failing to upgrade.
    fn write_tx(&mut self) -> Result<rusqlite::Transaction<'_>> {
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(Self::q)
    }

    fn q(e: rusqlite::Error) -> Error {
        Error::Journal(format!("query failed: {e}"))
    }
}
