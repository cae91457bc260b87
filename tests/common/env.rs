//! The test's private world: temp HOME/XDG dirs, a user key on disk, the
//! `jobctl` command builders (plain and preset ones such as
//! `rerun_unpaid`), and readers of a finished command's output.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use nostr_relay_builder::prelude::*;

use super::TestRelay;

/// A test's private world: temp HOME/XDG dirs and a user key on disk.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub keys: Keys,
}

impl TestEnv {
    /// A fresh env with a user key written to the default key file (0600).
    pub fn new() -> Self {
        let env = Self::bare();
        let keys = Keys::generate();
        write_private(
            &env.key_path(),
            &keys.secret_key().to_bech32().expect("nsec"),
        );
        TestEnv { keys, ..env }
    }

    /// A fresh env without any key file.
    pub fn bare() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("config/jobctl")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
        TestEnv {
            dir,
            keys: Keys::generate(),
        }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home().join("config/jobctl")
    }

    pub fn key_path(&self) -> PathBuf {
        self.config_dir().join("key")
    }

    pub fn config_path(&self) -> PathBuf {
        self.config_dir().join("config.toml")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.home().join("data/jobctl/journal.sqlite")
    }

    /// Rows of the journal's jobs table: (id, state, published, token).
    pub fn journal_jobs(&self) -> Vec<(String, String, bool, Option<String>)> {
        if !self.journal_path().exists() {
            return Vec::new();
        }
        let c = rusqlite::Connection::open(self.journal_path()).expect("open journal");
        // While jobctl is still creating it, the table may not exist yet.
        let Ok(mut st) =
            c.prepare("SELECT id, state, published, token FROM jobs ORDER BY created_at")
        else {
            return Vec::new();
        };
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// `jobctl` with a clean environment pointing at this env's dirs, as a
    /// plain process (for tests that spawn it and act while it runs).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("jobctl"));
        c.env_clear()
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join("config"))
            .env("XDG_DATA_HOME", self.home().join("data"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1");
        c
    }

    /// The same, run to completion with assert_cmd (bounded at 60 s).
    pub fn cmd(&self) -> Command {
        let mut c = Command::from_std(self.std_cmd());
        c.timeout(std::time::Duration::from_secs(60));
        c
    }

    /// `jobctl <verb...> --relay R...`: a verb with its relays preset (more
    /// flags may follow, then `--` and a job's own arguments).
    pub fn verb(&self, verb: &[&str], relays: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args(preset(verb, relays));
        c
    }

    /// `jobctl rerun --worker W --relay R...` (paid: the test adds
    /// `--token`, `--amount` or `JOBCTL_TOKEN`).
    pub fn rerun(&self, worker: &str, relays: &[&str]) -> Command {
        self.verb(&["rerun", "--worker", worker], relays)
    }

    /// `jobctl rerun --unpaid --worker W --relay R...`.
    pub fn rerun_unpaid(&self, worker: &str, relays: &[&str]) -> Command {
        self.verb(&["rerun", "--unpaid", "--worker", worker], relays)
    }

    /// [`TestEnv::rerun`] as a plain process, for tests that spawn it.
    pub fn std_rerun(&self, worker: &str, relays: &[&str]) -> std::process::Command {
        let mut c = self.std_cmd();
        c.args(preset(&["rerun", "--worker", worker], relays));
        c
    }

    /// [`TestEnv::rerun_unpaid`] as a plain process.
    pub fn std_rerun_unpaid(&self, worker: &str, relays: &[&str]) -> std::process::Command {
        let mut c = self.std_cmd();
        c.args(preset(&["rerun", "--unpaid", "--worker", worker], relays));
        c
    }
}

/// `verb` followed by `--relay R` for each relay.
fn preset(verb: &[&str], relays: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = verb.iter().map(|a| a.to_string()).collect();
    for r in relays {
        args.extend(["--relay".to_string(), r.to_string()]);
    }
    args
}

/// Write a file with mode 0600.
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// stdout of a finished command as a trimmed string.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// stderr of a finished command.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// stdout of a finished command as JSON.
pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Dispatch an unpaid job to `relays` as `env`'s user; returns its id.
pub fn dispatch(env: &TestEnv, worker: &str, relays: &[&TestRelay], extra: &[&str]) -> String {
    let urls: Vec<&str> = relays.iter().map(|r| r.url.as_str()).collect();
    let out = env
        .rerun_unpaid(worker, &urls)
        .args(extra)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}
