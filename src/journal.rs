//! The local journal: an SQLite database (mode 0600, versioned migrations)
//! holding every job jobctl dispatched. A job is written here, with its
//! signed event and its token, *before* anything is published, so a crash
//! or a dead network never loses a token or an intent. Then each relay's
//! outcome and every state transition jobctl observes are appended as a
//! timeline. A journal that cannot be opened or is corrupt is an error,
//! never a silent fresh start.

use std::path::{Path, PathBuf};

use nostr_sdk::prelude::*;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::relays::{RelayOutcome, RelayStatus};

use crate::settings::env::JOURNAL as ENV_JOURNAL;

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

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many ran. Never edit a shipped migration: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, relay outcomes, timeline.
    r#"
    CREATE TABLE IF NOT EXISTS jobs (
        id              TEXT PRIMARY KEY,
        created_at      INTEGER NOT NULL,
        author          TEXT NOT NULL,
        worker          TEXT NOT NULL,
        cmd             TEXT NOT NULL,
        args            TEXT NOT NULL,
        event           TEXT NOT NULL,
        token           TEXT,
        amount          INTEGER,
        unit            TEXT,
        mint            TEXT,
        relays          TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        content_hash    TEXT NOT NULL,
        rerun_of        TEXT,
        state           TEXT NOT NULL DEFAULT 'unpublished',
        published       INTEGER NOT NULL DEFAULT 0,
        exit_code       INTEGER,
        duration        REAL,
        change_token    TEXT,
        change_amount   INTEGER,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
    CREATE TABLE IF NOT EXISTS relay_outcomes (
        job_id     TEXT NOT NULL REFERENCES jobs(id),
        url        TEXT NOT NULL,
        status     TEXT NOT NULL,
        message    TEXT NOT NULL,
        latency_ms INTEGER NOT NULL,
        at         INTEGER NOT NULL,
        PRIMARY KEY (job_id, url)
    );
    CREATE TABLE IF NOT EXISTS timeline (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id  TEXT NOT NULL REFERENCES jobs(id),
        at      INTEGER NOT NULL,
        source  TEXT NOT NULL,
        state   TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS timeline_job ON timeline(job_id, seq);
    "#,
    // 2: reclaim attempts. A job has at most one final claim (`claimed` or
    // `spent`); `failed` attempts (mint unreachable...) may be retried.
    r#"
    CREATE TABLE IF NOT EXISTS claims (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id  TEXT NOT NULL REFERENCES jobs(id),
        kind    TEXT NOT NULL,
        amount  INTEGER NOT NULL,
        unit    TEXT NOT NULL,
        status  TEXT NOT NULL,
        message TEXT NOT NULL,
        at      INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS claims_final ON claims(job_id) WHERE status IN ('claimed', 'spent');
    "#,
    // 3: tokens the wallet makes, recorded before the mint is asked
    // (`prepared`, by the wallet's operation id), then with the token
    // (`created`), then `journaled` (in a job, same transaction as the
    // job row) or `delivered` (printed by `wallet send`). A send left at
    // `prepared`/`created` was cut off: `wallet check` takes it back
    // (`reclaimed`).
    r#"
    CREATE TABLE IF NOT EXISTS sends (
        op_id      TEXT PRIMARY KEY,
        mint       TEXT NOT NULL,
        amount     INTEGER NOT NULL,
        purpose    TEXT NOT NULL,
        state      TEXT NOT NULL,
        token      TEXT,
        job_id     TEXT,
        message    TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS sends_token ON sends(token);
    "#,
];

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
    /// `prepared`, `created`, `journaled`, `delivered`, `reclaimed`, `spent`.
    pub state: String,
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

/// One reclaim attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    /// Job id.
    pub job_id: String,
    /// `change`, `payment` or `refund`.
    pub kind: String,
    /// Amount credited (claimed) or not recovered (spent).
    pub amount: u64,
    /// Unit.
    pub unit: String,
    /// `claimed`, `spent` or `failed`.
    pub status: String,
    /// Detail.
    pub message: String,
    /// When.
    pub at: u64,
}

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
    pub state: String,
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
    pub status: String,
    /// Relay's message.
    pub message: String,
    /// Latency.
    pub latency_ms: u64,
    /// When.
    pub at: u64,
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

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
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
        if version > 0 {
            let ok: String = self
                .conn
                .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
                .map_err(sql)?;
            if ok != "ok" {
                return Err(Error::Journal(format!("is corrupt ({ok})")));
            }
        }
        if version == known {
            return Ok(());
        }
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

    /// Record a job before it is published. Durable when this returns.
    pub fn record_dispatch(&mut self, j: &NewJob<'_>) -> Result<()> {
        self.record_dispatches(std::slice::from_ref(j))
    }

    /// Record many jobs in one transaction (one fsync), all or none. A
    /// token the wallet made for a job is marked `journaled` in the same
    /// transaction.
    pub fn record_dispatches(&mut self, jobs: &[NewJob<'_>]) -> Result<()> {
        let tx = self.write_tx()?;
        for j in jobs {
            Self::insert_job(&tx, j)?;
            if let Some(token) = j.token {
                tx.execute(
                    "UPDATE sends SET state = 'journaled', job_id = ?2, updated_at = ?3
                     WHERE token = ?1 AND state IN ('prepared', 'created')",
                    params![token, j.event.id.to_hex(), now() as i64],
                )
                .map_err(Self::q)?;
            }
        }
        tx.commit().map_err(Self::q)
    }

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
    pub fn send_state(&mut self, op_id: &str, state: &str, message: &str) -> Result<()> {
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
            "pending"
        } else {
            "unpublished"
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
        state: &str,
        message: &str,
        at: u64,
        exit_code: Option<i64>,
        duration: Option<f64>,
        change: Option<(&str, Option<u64>)>,
    ) -> Result<bool> {
        let hex = id.to_hex();
        let current: Option<(String, Option<i64>)> = self
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
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM jobs WHERE published = 0 ORDER BY created_at, id",
                Self::COLS
            ))
            .map_err(Self::q)?;
        let rows = st.query_map([], Self::row).map_err(Self::q)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Self::q)
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
                    status: r.get(1)?,
                    message: r.get(2)?,
                    latency_ms: r.get::<_, i64>(3)? as u64,
                    at: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(Self::q)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(Self::q)
    }

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

    /// Relays that accepted a job.
    pub fn accepted_relays(&self, id: &EventId) -> Result<Vec<String>> {
        Ok(self
            .outcomes(id)?
            .into_iter()
            .filter(|o| o.status == "accepted")
            .map(|o| o.url)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(keys: &Keys, n: u64) -> Event {
        EventBuilder::new(Kind::Custom(5100), "")
            .tags([Tag::custom(TagKind::Custom("cmd".into()), [n.to_string()])])
            .sign_with_keys(keys)
            .expect("sign")
    }

    fn new_job<'a>(e: &'a Event, relays: &'a [RelayUrl], key: Option<&'a str>) -> NewJob<'a> {
        NewJob {
            event: e,
            worker: e.pubkey,
            cmd: "act",
            args: &[],
            token: Some("cashuBsecret"),
            payment: None,
            relays,
            idempotency_key: key,
            content_hash: "h",
            rerun_of: None,
        }
    }

    #[test]
    fn write_read_and_transitions() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j/journal.sqlite");
        let keys = Keys::generate();
        let e = event(&keys, 1);
        let relays = vec![RelayUrl::parse("ws://127.0.0.1:1").expect("url")];
        {
            let mut j = Journal::open(&path).expect("open");
            j.record_dispatch(&new_job(&e, &relays, Some("ci-1")))
                .expect("record");
            assert!(j.record_dispatch(&new_job(&e, &relays, None)).is_err());
            let r = j.get(&e.id).expect("get").expect("row");
            assert_eq!(r.state, "unpublished");
            assert_eq!(r.token.as_deref(), Some("cashuBsecret"));
            assert_eq!(j.unpublished().expect("unpublished").len(), 1);
            let out = RelayOutcome {
                url: relays[0].to_string(),
                status: RelayStatus::Accepted,
                message: String::new(),
                latency_ms: 2,
            };
            j.record_outcomes(&e.id, std::slice::from_ref(&out))
                .expect("outcomes");
            // A later failure does not downgrade the acceptance.
            let failed = RelayOutcome {
                status: RelayStatus::Failed,
                ..out
            };
            j.record_outcomes(&e.id, &[failed]).expect("outcomes");
            assert_eq!(j.accepted_relays(&e.id).expect("acc").len(), 1);
            assert!(j.unpublished().expect("unpublished").is_empty());
            assert!(j
                .record_state(&e.id, "running", "go", 5, None, None, None)
                .expect("state"));
            assert!(!j
                .record_state(&e.id, "running", "go", 6, None, None, None)
                .expect("state"));
            assert!(j
                .record_state(&e.id, "success", "", 7, Some(0), Some(1.5), None)
                .expect("state"));
            assert_eq!(j.timeline(&e.id).expect("timeline").len(), 5);
        }
        // Reopens with the same data, 0600.
        let j = Journal::open(&path).expect("reopen");
        assert_eq!(
            j.by_idempotency_key("ci-1")
                .expect("key")
                .expect("row")
                .state,
            "success"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn concurrent_first_opens_create_it_once() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("new/journal.sqlite");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || Journal::open(&p).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().expect("thread").expect("open");
        }
        let j = Journal::open(&path).expect("reopen");
        let v: i64 = j
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_journal_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("journal.sqlite");
        drop(Journal::open(&path).expect("open"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = Journal::open(&path).err().expect("refused");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn sends_move_to_journaled_with_their_job() {
        let dir = tempfile::tempdir().expect("dir");
        let mut j = Journal::open(&dir.path().join("j.sqlite")).expect("open");
        j.send_prepared("op1", "http://m", 5, "job")
            .expect("prepared");
        j.send_created("op1", "cashuBsecret").expect("created");
        assert_eq!(j.send("op1").expect("get").expect("row").state, "created");
        let keys = Keys::generate();
        let e = event(&keys, 1);
        let relays = vec![RelayUrl::parse("ws://127.0.0.1:1").expect("url")];
        j.record_dispatch(&new_job(&e, &relays, None))
            .expect("record");
        let r = j.send("op1").expect("get").expect("row");
        assert_eq!(r.state, "journaled");
        assert_eq!(r.job_id, Some(e.id.to_hex()));
        assert!(j.token_in_jobs("cashuBsecret").expect("query"));
    }

    #[test]
    fn garbage_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("journal.sqlite");
        std::fs::write(&path, vec![0x42u8; 8192]).expect("write");
        let err = Journal::open(&path).err().expect("must fail");
        assert!(err.to_string().contains("journal"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), vec![0x42u8; 8192]);
    }
}
