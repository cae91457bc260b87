//! Configuration: where jobctl keeps its files (XDG), the TOML config file,
//! and the precedence rule flag > environment > file > built-in default.
//!
//! The file is strict: an unknown key or a bad value is an error naming the
//! file, the line and the key, never a silent default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nostr_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::protocol::PTag;

use crate::settings::env::{CONFIG as ENV_CONFIG, RELAYS as ENV_RELAYS, WORKER as ENV_WORKER};
use crate::settings::env_nonempty;

mod parse;

pub use parse::{
    format_duration, parse_duration, parse_p_tag, parse_pubkey, parse_relay, parse_relays,
    parse_time,
};

/// Default command run by a job.
pub const DEFAULT_CMD: &str = "act";
/// Default bound on a whole publish.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on a relay query.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on a wallet command that talks to a mint.
pub const DEFAULT_MINT_TIMEOUT: Duration = Duration::from_secs(30);

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."))
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_absolute() => p,
        _ => home().join(fallback),
    }
}

/// `$XDG_CONFIG_HOME/jobctl` (default `~/.config/jobctl`).
pub fn config_dir() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("jobctl")
}

/// `$XDG_DATA_HOME/jobctl` (default `~/.local/share/jobctl`).
pub fn data_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("jobctl")
}

/// The default config file path.
pub fn default_config_path() -> PathBuf {
    config_dir().join("config.toml")
}

/// The default key file path.
pub fn default_key_path() -> PathBuf {
    config_dir().join("key")
}

/// The config path: `explicit` (`--config`) beats a non-empty
/// `JOBCTL_CONFIG` beats the default. The bool says whether it was named
/// explicitly (and so must exist when read).
pub fn config_path(explicit: Option<&Path>) -> (PathBuf, bool) {
    let env_path = std::env::var_os(ENV_CONFIG)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    match (explicit, env_path) {
        (Some(p), _) => (p.to_path_buf(), true),
        (None, Some(p)) => (p, true),
        (None, None) => (default_config_path(), false),
    }
}

/// The config file as written on disk. Every field is optional.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Relay URLs (ws:// or wss://) every job is published to.
    pub relays: Option<Vec<String>>,
    /// Default worker, npub or hex.
    pub worker: Option<String>,
    /// Default command.
    pub cmd: Option<String>,
    /// Default arguments.
    pub args: Option<Vec<String>>,
    /// `worker`, `self`, or a pubkey.
    pub p_tag: Option<String>,
    /// The signing key file.
    pub key_file: Option<PathBuf>,
    /// How many relays must accept for success.
    pub min_accept: Option<usize>,
    /// Route jobs to the worker's own relays (NIP-65 outbox model).
    pub outbox: Option<bool>,
    /// Timeouts, as `10s`, `500ms`, `2m`.
    pub timeouts: Option<FileTimeouts>,
    /// How tokens the wallet makes for jobs are written: `cashuA` or `cashuB`.
    pub token_format: Option<String>,
    /// Blossom server (http or https) for Hive CI runner scripts and logs.
    pub blossom: Option<String>,
}

/// `[timeouts]` table.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileTimeouts {
    /// Bound on a whole publish.
    pub publish: Option<String>,
    /// Bound on a one-shot relay query.
    pub query: Option<String>,
    /// Bound on a wallet command that talks to a mint.
    pub mint: Option<String>,
}

/// The effective configuration after file and environment are applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (it may not exist).
    pub path: PathBuf,
    /// Whether that file existed and was read.
    pub loaded: bool,
    /// Relays to publish to and read from.
    pub relays: Vec<RelayUrl>,
    /// Default worker.
    pub worker: Option<PublicKey>,
    /// Default command.
    pub cmd: String,
    /// Default arguments.
    pub args: Vec<String>,
    /// Who the `p` tag addresses.
    pub p_tag: PTag,
    /// The key file.
    pub key_file: PathBuf,
    /// Relays that must accept.
    pub min_accept: usize,
    /// Route jobs to the worker's NIP-65 inbox relays too, and read its
    /// replies from its outbox relays (`outbox`).
    pub outbox: bool,
    /// Bound on a publish.
    pub publish_timeout: Duration,
    /// Bound on a query.
    pub query_timeout: Duration,
    /// Bound on a wallet command that talks to a mint.
    pub mint_timeout: Duration,
    /// How tokens the wallet makes for jobs are written.
    pub token_format: crate::wallet::TokenFormat,
    /// The Blossom server `rerun --repo --workflow` uploads its runner script to.
    pub blossom: Option<String>,
}

impl Config {
    /// Built-in defaults.
    pub fn defaults(path: PathBuf) -> Self {
        Config {
            path,
            loaded: false,
            relays: Vec::new(),
            worker: None,
            cmd: DEFAULT_CMD.to_string(),
            args: Vec::new(),
            p_tag: PTag::Worker,
            key_file: default_key_path(),
            min_accept: 1,
            outbox: true,
            publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            mint_timeout: DEFAULT_MINT_TIMEOUT,
            token_format: crate::wallet::TokenFormat::V3,
            blossom: None,
        }
    }

    /// Load the config: `explicit` (from `--config`) beats `JOBCTL_CONFIG`
    /// beats the default path. An explicitly named file must exist; the
    /// default one may be absent. Then environment overrides are applied.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        let (path, must_exist) = config_path(explicit);
        let mut cfg = match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_toml(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                Self::defaults(path)
            }
            Err(e) => {
                return Err(Error::Config {
                    path,
                    msg: format!("cannot read: {e}"),
                })
            }
        };
        cfg.apply_env()?;
        Ok(cfg)
    }

    /// Parse and validate config text.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self> {
        let file: FileConfig = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            msg: toml_error_line(text, &e),
        })?;
        // Validation errors are `key: message`; point at the key's line.
        let err = |msg: String| {
            let key = msg.split(':').next().unwrap_or("");
            let leaf = key.rsplit('.').next().unwrap_or(key);
            let line = text.lines().position(|l| {
                let l = l.trim_start();
                l.strip_prefix(leaf)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            Error::Config {
                path: path.to_path_buf(),
                msg: match line {
                    Some(n) => format!("line {} (`{key}`){}", n + 1, &msg[key.len()..]),
                    None => msg,
                },
            }
        };
        let mut cfg = Self::defaults(path.to_path_buf());
        cfg.loaded = true;
        if let Some(relays) = file.relays {
            cfg.relays = parse_relays(relays.iter().map(String::as_str))
                .map_err(|e| err(format!("relays: {e}")))?;
        }
        if let Some(w) = file.worker {
            cfg.worker = Some(parse_pubkey(&w).map_err(|e| err(format!("worker: {e}")))?);
        }
        if let Some(cmd) = file.cmd {
            if cmd.trim().is_empty() {
                return Err(err("cmd: must not be empty".into()));
            }
            cfg.cmd = cmd;
        }
        if let Some(args) = file.args {
            cfg.args = args;
        }
        if let Some(p) = file.p_tag {
            cfg.p_tag = parse_p_tag(&p).map_err(|e| err(format!("p_tag: {e}")))?;
        }
        if let Some(f) = file.token_format {
            cfg.token_format = f.parse().map_err(|e| err(format!("token_format: {e}")))?;
        }
        if let Some(b) = file.blossom {
            cfg.blossom = Some(parse_blossom(&b).map_err(|e| err(format!("blossom: {e}")))?);
        }
        if let Some(k) = file.key_file {
            cfg.key_file = expand_tilde(&k);
        }
        if let Some(n) = file.min_accept {
            if n == 0 {
                return Err(err("min_accept: must be at least 1".into()));
            }
            cfg.min_accept = n;
        }
        if let Some(o) = file.outbox {
            cfg.outbox = o;
        }
        if let Some(t) = file.timeouts {
            if let Some(s) = t.publish {
                cfg.publish_timeout =
                    parse_duration(&s).map_err(|e| err(format!("timeouts.publish: {e}")))?;
            }
            if let Some(s) = t.query {
                cfg.query_timeout =
                    parse_duration(&s).map_err(|e| err(format!("timeouts.query: {e}")))?;
            }
            if let Some(s) = t.mint {
                cfg.mint_timeout =
                    parse_duration(&s).map_err(|e| err(format!("timeouts.mint: {e}")))?;
            }
        }
        Ok(cfg)
    }

    /// Apply `JOBCTL_RELAYS` and `JOBCTL_WORKER`.
    pub fn apply_env(&mut self) -> Result<()> {
        if let Some(v) = env_nonempty(ENV_RELAYS) {
            self.relays = parse_relays(v.split(',').map(str::trim).filter(|s| !s.is_empty()))
                .map_err(|e| Error::input(format!("{ENV_RELAYS}: {e}")))?;
        }
        if let Some(v) = env_nonempty(ENV_WORKER) {
            self.worker =
                Some(parse_pubkey(&v).map_err(|e| Error::input(format!("{ENV_WORKER}: {e}")))?);
        }
        Ok(())
    }

    /// The effective config rendered back as TOML (for `config show`).
    pub fn to_toml(&self) -> String {
        let file = FileConfig {
            relays: Some(self.relays.iter().map(|r| r.to_string()).collect()),
            worker: self
                .worker
                .map(|w| w.to_bech32().unwrap_or_else(|_| w.to_hex())),
            cmd: Some(self.cmd.clone()),
            args: Some(self.args.clone()),
            p_tag: Some(match self.p_tag {
                PTag::Worker => "worker".to_string(),
                PTag::SelfKey => "self".to_string(),
                PTag::Key(pk) => pk.to_hex(),
            }),
            key_file: Some(self.key_file.clone()),
            min_accept: Some(self.min_accept),
            outbox: Some(self.outbox),
            timeouts: Some(FileTimeouts {
                publish: Some(format_duration(self.publish_timeout)),
                query: Some(format_duration(self.query_timeout)),
                mint: Some(format_duration(self.mint_timeout)),
            }),
            token_format: Some(
                match self.token_format {
                    crate::wallet::TokenFormat::V3 => "cashuA",
                    crate::wallet::TokenFormat::V4 => "cashuB",
                }
                .to_string(),
            ),
            blossom: self.blossom.clone(),
        };
        toml::to_string(&file).unwrap_or_default()
    }
}

/// A Blossom server's base URL: http(s), no trailing slash.
pub fn parse_blossom(s: &str) -> std::result::Result<String, String> {
    let t = s.trim().trim_end_matches('/');
    let ok = (t.starts_with("http://") || t.starts_with("https://"))
        && url::Url::parse(t).is_ok_and(|u| u.host_str().is_some())
        && !t
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
    if ok {
        Ok(t.to_string())
    } else {
        Err(format!(
            "`{}` is not an http(s) URL",
            crate::text::clip(s, 200)
        ))
    }
}

/// The commented template written by `jobctl config init`.
pub const TEMPLATE: &str = r#"# jobctl configuration. Flags beat environment variables, which beat this file.

# Relays every job is published to (JOBCTL_RELAYS, --relay), e.g.
# relays = ["wss://relay.example.com", "wss://nos.example.org"]
relays = []

# Default worker, npub or hex (JOBCTL_WORKER, --worker).
# worker = "npub1..."

# Default command and arguments of a job (--cmd, arguments after --).
cmd = "act"
args = []

# Who the `p` tag addresses: "worker" (default), "self", or a pubkey (--p).
p_tag = "worker"

# The signing key (--key-file, JOBCTL_SECRET_KEY).
# key_file = "~/.config/jobctl/key"

# How many relays must accept a job for `rerun` to exit 0 (--min-accept).
min_accept = 1

# Route jobs to the worker's own relays too (NIP-65 outbox model): publish
# to the inbox relays of its kind 10002 relay list, read its replies from
# its outbox relays (--no-outbox turns it off for one rerun).
outbox = true

# How tokens the wallet makes for jobs are written (--token-format):
# "cashuA" (V3, decoded offline by every client) or "cashuB" (V4).
# token_format = "cashuA"

# Blossom server that `rerun --repo --workflow` uploads its runner script to
# and that Hive CI runs upload their logs to (--blossom).
# blossom = "https://blossom.example.com"

[timeouts]
# Each is the default --timeout of a group of commands, and bounds the whole
# command: every relay lookup, mint call and publish in it.
# rerun and republish.
publish = "10s"
# status, show, logs, list, workers, cancel, reclaim.
query = "10s"
# wallet receive, send and pay.
mint = "30s"
"#;

/// One line for a TOML error: `line N (`key`): message`.
fn toml_error_line(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_no = text[..start].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("");
            match line.split_once('=') {
                Some((key, _)) if !key.trim().is_empty() => {
                    format!("line {line_no} (`{}`): {msg}", key.trim())
                }
                _ => format!("line {line_no}: {msg}"),
            }
        }
        None => msg,
    }
}

fn expand_tilde(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home().join(rest),
        Err(_) => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = Config::from_toml(Path::new("/c.toml"), "cmd = \"act\"\nrelayz = []\n")
            .expect_err("unknown key");
        let s = e.to_string();
        assert!(
            s.contains("/c.toml") && s.contains("line 2") && s.contains("relayz"),
            "{s}"
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::from_toml(Path::new("/c.toml"), "relays = [\"http://x\"]\n")
            .expect_err("bad relay");
        assert!(e.to_string().contains("line 1 (`relays`)"), "{e}");
        let e =
            Config::from_toml(Path::new("/c.toml"), "min_accept = \"x\"\n").expect_err("bad type");
        assert!(e.to_string().contains("min_accept"), "{e}");
        let e = Config::from_toml(Path::new("/c.toml"), "[timeouts]\npublish = \"soon\"\n")
            .expect_err("bad duration");
        assert!(e.to_string().contains("timeouts.publish"), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn template_parses() {
        let cfg = Config::from_toml(Path::new("/c.toml"), TEMPLATE).expect("template");
        assert!(cfg.relays.is_empty());
        assert_eq!(cfg.cmd, "act");
    }

    #[test]
    fn blossom_is_an_http_url_and_round_trips() {
        let cfg = Config::from_toml(
            Path::new("/c.toml"),
            "blossom = \"https://blossom.example.com/\"\n",
        )
        .expect("blossom");
        assert_eq!(cfg.blossom.as_deref(), Some("https://blossom.example.com"));
        assert!(cfg
            .to_toml()
            .contains("blossom = \"https://blossom.example.com\""));
        let e = Config::from_toml(Path::new("/c.toml"), "blossom = \"ftp://x\"\n")
            .expect_err("not http");
        assert!(e.to_string().contains("line 1 (`blossom`)"), "{e}");
        assert!(parse_blossom("http://127.0.0.1:8080").is_ok());
        assert!(parse_blossom("https://x.example/a b").is_err());
    }
}
