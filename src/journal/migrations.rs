//! The journal's schema migrations, applied in order; `PRAGMA
//! user_version` records how many ran. Never edit a shipped migration: add
//! a new one.

/// The migrations (see the module doc).
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 4: workers' NIP-65 relay lists (owned by `crate::outbox`).
    crate::outbox::MIGRATION,
];
