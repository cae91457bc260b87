//! Settings: every input that is not a command's own flag, resolved once
//! per command with one precedence rule: flag, then environment, then
//! config file, then built-in default. This module owns every `JOBCTL_*` variable name;
//! the modules that read them ([`crate::config`], [`crate::keys`],
//! [`crate::journal`], [`crate::wallet`]) take the names from here.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::error::Result;
use crate::journal::{self, Journal};
use crate::keys::{self, SigningKey};
use crate::wallet::{self, LocalWallet};
use crate::worker::WorkerConfig;

/// The environment variables jobctl reads, all in one place.
pub mod env {
    /// The config file path (`--config`).
    pub const CONFIG: &str = "JOBCTL_CONFIG";
    /// A comma-separated relay list (config `relays`, `--relay`).
    pub const RELAYS: &str = "JOBCTL_RELAYS";
    /// The default worker, npub or hex (config `worker`, `--worker`).
    pub const WORKER: &str = "JOBCTL_WORKER";
    /// A secret key, nsec or hex (`--key-file`, config `key_file`).
    pub const SECRET_KEY: &str = "JOBCTL_SECRET_KEY";
    /// The passphrase of an ncryptsec key file.
    pub const KEY_PASSPHRASE: &str = "JOBCTL_KEY_PASSPHRASE";
    /// The journal database (`--journal`).
    pub const JOURNAL: &str = "JOBCTL_JOURNAL";
    /// The wallet directory (`--wallet`).
    pub const WALLET_DIR: &str = "JOBCTL_WALLET_DIR";
    /// A Cashu token paying for `rerun` (`--token`).
    pub const TOKEN: &str = "JOBCTL_TOKEN";
    /// `rerun`'s idempotency key (`--idempotency-key`).
    pub const IDEMPOTENCY_KEY: &str = "JOBCTL_IDEMPOTENCY_KEY";
    /// The log filter (`-v`), like `RUST_LOG`.
    pub const LOG: &str = "JOBCTL_LOG";
}

/// The global flags, as parsed (the binary's `Cli` fills this).
#[derive(Debug, Clone, Default)]
pub struct GlobalFlags {
    /// `--config PATH`.
    pub config: Option<PathBuf>,
    /// `--key-file PATH`.
    pub key_file: Option<PathBuf>,
    /// `--journal PATH`.
    pub journal: Option<PathBuf>,
    /// `--wallet DIR`.
    pub wallet_dir: Option<PathBuf>,
}

/// The resolved settings of one command. Paths are resolved at once; the
/// config file is read on first use (and only once), so commands that do
/// not need it (`config path`) work with a broken one.
#[derive(Debug)]
pub struct Settings {
    flags: GlobalFlags,
    /// The config file path, and whether it was named (and so must exist).
    pub config_path: (PathBuf, bool),
    /// The journal database path.
    pub journal_path: PathBuf,
    /// The wallet directory.
    pub wallet_dir: PathBuf,
    config: OnceCell<Config>,
    /// Asks for an ncryptsec key's passphrase (the binary's prompt).
    ask_passphrase: Option<keys::AskPassphrase>,
}

impl Settings {
    /// Resolve flags against the environment and the defaults.
    pub fn resolve(flags: GlobalFlags) -> Settings {
        Settings {
            config_path: config::config_path(flags.config.as_deref()),
            journal_path: journal::resolve_path(flags.journal.as_deref()),
            wallet_dir: wallet_dir(flags.wallet_dir.as_deref()),
            flags,
            config: OnceCell::new(),
            ask_passphrase: None,
        }
    }

    /// Ask with `ask` for an ncryptsec key's passphrase when
    /// `JOBCTL_KEY_PASSPHRASE` is unset (without it, such a key is an error).
    pub fn with_passphrase_prompt(mut self, ask: keys::AskPassphrase) -> Settings {
        self.ask_passphrase = Some(ask);
        self
    }

    /// What asks for an ncryptsec key's passphrase, if anything.
    pub fn passphrase_prompt(&self) -> Option<keys::AskPassphrase> {
        self.ask_passphrase
    }

    /// The config file (with `JOBCTL_RELAYS`/`JOBCTL_WORKER` applied),
    /// read once.
    pub fn config(&self) -> Result<&Config> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let c = Config::load(self.flags.config.as_deref())?;
        Ok(self.config.get_or_init(|| c))
    }

    /// `--key-file`, when given.
    pub fn key_file_flag(&self) -> Option<&Path> {
        self.flags.key_file.as_deref()
    }

    /// The key file that `key generate`/`key import` write: `--key-file`,
    /// else the config's `key_file`.
    pub fn key_file(&self) -> Result<PathBuf> {
        match &self.flags.key_file {
            Some(p) => Ok(p.clone()),
            None => Ok(self.config()?.key_file.clone()),
        }
    }

    /// The signing key (required): `--key-file` beats `JOBCTL_SECRET_KEY`
    /// beats the config's key file.
    pub fn signing_key(&self) -> Result<SigningKey> {
        keys::resolve(
            self.key_file_flag(),
            &self.config()?.key_file,
            self.ask_passphrase,
        )
    }

    /// The signing key, or `None` when there is none at all (reads work
    /// without one). A key that exists but is broken is still an error.
    pub fn optional_key(&self) -> Result<Option<SigningKey>> {
        let cfg = self.config()?;
        let has_any = self.flags.key_file.is_some()
            || std::env::var(env::SECRET_KEY).is_ok_and(|v| !v.trim().is_empty())
            || cfg.key_file.exists();
        if has_any {
            self.signing_key().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Where token checks keep the keysets of mints they have seen (next
    /// to the journal; see `wallet::check_token`).
    pub fn keyset_cache_dir(&self) -> PathBuf {
        let dir = self.journal_path.parent().unwrap_or(Path::new("."));
        dir.join("mint-keysets")
    }

    /// Open the journal, creating it on first use.
    pub fn journal(&self) -> Result<Journal> {
        Journal::open(&self.journal_path)
    }

    /// Open the journal only if it already exists (readers never create it).
    pub fn existing_journal(&self) -> Result<Option<Journal>> {
        Journal::open_existing(&self.journal_path)
    }

    /// Open the wallet, creating it on first use.
    pub async fn wallet(&self) -> Result<LocalWallet> {
        LocalWallet::open(&self.wallet_dir).await
    }
}

/// `jobctl worker`'s flags that override its config file (empty lists and
/// `None` leave the file's value).
#[derive(Debug, Clone, Default)]
pub struct WorkerFlags {
    /// `--worker-config PATH`.
    pub worker_config: Option<PathBuf>,
    /// `--allow-cmd` (replaces the file's list).
    pub allow_cmds: Vec<String>,
    /// `--price`.
    pub price: Option<u64>,
    /// `--accept-mint`.
    pub mints: Vec<String>,
    /// `--unpaid-client`.
    pub unpaid_clients: Vec<String>,
    /// `--concurrency`.
    pub concurrency: Option<usize>,
    /// `--max-duration` (seconds).
    pub max_duration: Option<u64>,
    /// `--min-duration` (seconds).
    pub min_duration: Option<u64>,
    /// `--catch-up` (a duration; `0` = only new jobs).
    pub catch_up: Option<String>,
    /// `--mint-timeout` (a duration).
    pub mint_timeout: Option<String>,
    /// `--freelist`.
    pub freelist: Vec<String>,
    /// `--freelist-timeout` (a duration).
    pub freelist_timeout: Option<String>,
}

/// A duration flag in whole seconds; a bad one is exit 2 naming the flag.
fn flag_secs(flag: &str, value: &str) -> Result<u64> {
    config::parse_duration(value)
        .map(|d| d.as_secs())
        .map_err(|e| crate::error::Error::input(format!("{flag}: {e}")))
}

impl Settings {
    /// The worker's settings: a flag beats the `--worker-config` file beats
    /// the built-in default; the wallet is the file's `wallet_dir`, else
    /// the global one (`--wallet`, `JOBCTL_WALLET_DIR`).
    pub fn worker_config(&self, f: WorkerFlags) -> Result<WorkerConfig> {
        let mut w = match &f.worker_config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    crate::error::Error::input(format!("--worker-config {}: {e}", p.display()))
                })?;
                WorkerConfig::from_toml(p, &text)?
            }
            None => WorkerConfig::default(),
        };
        let replace = |to: &mut Vec<String>, from: Vec<String>| {
            if !from.is_empty() {
                *to = from;
            }
        };
        replace(&mut w.allow_cmds, f.allow_cmds);
        replace(&mut w.mints, f.mints);
        replace(&mut w.unpaid_clients, f.unpaid_clients);
        replace(&mut w.freelist, f.freelist);
        w.price_per_second = f.price.unwrap_or(w.price_per_second);
        w.concurrency = f.concurrency.unwrap_or(w.concurrency);
        w.max_duration = f.max_duration.unwrap_or(w.max_duration);
        w.min_duration = f.min_duration.unwrap_or(w.min_duration);
        if let Some(d) = &f.catch_up {
            w.catch_up = if d.trim() == "0" {
                0
            } else {
                flag_secs("--catch-up", d)?
            };
        }
        if let Some(d) = &f.mint_timeout {
            w.mint_timeout = flag_secs("--mint-timeout", d)?.max(1);
        }
        if let Some(d) = &f.freelist_timeout {
            w.freelist_timeout = flag_secs("--freelist-timeout", d)?.max(1);
        }
        if w.wallet_dir.is_none() {
            w.wallet_dir = Some(self.wallet_dir.clone());
        }
        Ok(w)
    }
}

/// The wallet directory: `--wallet` beats `JOBCTL_WALLET_DIR` (when not
/// empty) beats `$XDG_DATA_HOME/jobctl/wallet`.
pub fn wallet_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(env::WALLET_DIR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(wallet::default_dir)
}

/// A variable's value when it is set to something other than blanks.
pub fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::resolve(GlobalFlags {
            wallet_dir: Some("/tmp/jobctl-test-wallet".into()),
            ..GlobalFlags::default()
        })
    }

    #[test]
    fn worker_flags_beat_the_worker_config_and_the_wallet_falls_back_to_the_global_one() {
        let dir = std::env::temp_dir().join(format!("jobctl-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("worker.toml");
        std::fs::write(
            &file,
            "price_per_second = 3\nconcurrency = 4\nmints = [\"http://127.0.0.1:3338\"]\n",
        )
        .expect("write");
        let w = settings()
            .worker_config(WorkerFlags {
                worker_config: Some(file.clone()),
                price: Some(7),
                allow_cmds: vec!["echo".into()],
                catch_up: Some("0".into()),
                mint_timeout: Some("500ms".into()),
                ..WorkerFlags::default()
            })
            .expect("resolves");
        assert_eq!(w.price_per_second, 7, "flag beats file");
        assert_eq!(w.concurrency, 4, "file beats default");
        assert_eq!(w.allow_cmds, vec!["echo".to_string()]);
        assert_eq!((w.catch_up, w.mint_timeout), (0, 1));
        assert_eq!(
            w.wallet_dir,
            Some(std::path::PathBuf::from("/tmp/jobctl-test-wallet"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_worker_duration_is_bad_input_naming_its_flag() {
        let e = settings()
            .worker_config(WorkerFlags {
                freelist_timeout: Some("soon".into()),
                ..WorkerFlags::default()
            })
            .expect_err("bad duration");
        assert!(matches!(e, crate::error::Error::Input(_)), "{e:?}");
        assert!(e.to_string().starts_with("--freelist-timeout: "), "{e}");
    }
}
