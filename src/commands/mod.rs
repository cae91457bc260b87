//! One function per subcommand: turn parsed flags into library calls and
//! print the results (data on stdout, humans on stderr).

use std::io::{IsTerminal, Read, Write};

use clap::CommandFactory;
use jobctl::config::{self, Config};
use jobctl::deadline::Deadline;
use jobctl::error::{exit, Error, Result};
use jobctl::keys::{self, npub};
use nostr_sdk::prelude::*;

use crate::cli::{Cli, Command, ConfigCommand, KeyCommand, Shell};

mod dispatch;
mod follow;
mod manage;
mod pay;
mod serve;

/// Run the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let ctx = Ctx {
        config_flag: cli.config,
        key_file: cli.key_file,
        journal_flag: cli.journal,
        wallet_dir: cli.wallet_dir,
        quiet: cli.quiet,
        started: std::time::Instant::now(),
        deadline: std::cell::Cell::new(None),
    };
    match cli.command {
        Command::Rerun(args) => dispatch::rerun(&ctx, *args),
        Command::Wallet(c) => pay::wallet(&ctx, c),
        Command::Reclaim(a) => pay::reclaim(&ctx, a),
        Command::Worker(a) => serve::worker(&ctx, a),
        Command::Cancel(a) => manage::cancel(&ctx, a),
        Command::Republish(a) => manage::republish(&ctx, a),
        Command::Stats(a) => manage::stats(&ctx, a),
        Command::Watch(a) => follow::watch(&ctx, a),
        Command::Status(a) => follow::status(&ctx, a),
        Command::Show(a) => follow::show(&ctx, a),
        Command::Logs(a) => follow::logs(&ctx, a),
        Command::List(a) => follow::list(&ctx, a),
        Command::Workers(a) => follow::workers(&ctx, a),
        Command::Key(cmd) => key(&ctx, cmd),
        Command::Config(cmd) => config_cmd(&ctx, cmd),
        Command::Completions { shell } => completions(shell),
    }
}

pub(crate) struct Ctx {
    config_flag: Option<std::path::PathBuf>,
    key_file: Option<std::path::PathBuf>,
    journal_flag: Option<std::path::PathBuf>,
    wallet_dir: Option<std::path::PathBuf>,
    quiet: bool,
    /// When the command started: its deadline counts from here.
    started: std::time::Instant,
    /// The command's one deadline, once its `--timeout` is known.
    deadline: std::cell::Cell<Option<Deadline>>,
}

impl Ctx {
    /// Set the command's one deadline: `--timeout` if given, else
    /// `default`, counted from the start of the command. Every network
    /// step below gets what is left of it.
    pub(crate) fn start_deadline(
        &self,
        flag: Option<&str>,
        default: std::time::Duration,
    ) -> Result<Deadline> {
        let d = Deadline::starting(self.started, timeout_for(flag, default)?);
        self.deadline.set(Some(d));
        Ok(d)
    }

    /// The command's deadline (see [`Ctx::start_deadline`]); a command
    /// that never set one gets the default publish bound.
    pub(crate) fn deadline(&self) -> Deadline {
        self.deadline
            .get()
            .unwrap_or_else(|| Deadline::starting(self.started, config::DEFAULT_PUBLISH_TIMEOUT))
    }

    fn config(&self) -> Result<Config> {
        Config::load(self.config_flag.as_deref())
    }

    /// The signing key, or `None` when there is none (reads work without
    /// one; a key only answers NIP-42 AUTH). A key that exists but is
    /// broken is still an error.
    fn optional_key(&self, cfg: &Config) -> Result<Option<keys::SigningKey>> {
        let has_any = self.key_file.is_some()
            || std::env::var(keys::ENV_SECRET_KEY).is_ok_and(|v| !v.trim().is_empty())
            || cfg.key_file.exists();
        if has_any {
            keys::resolve(self.key_file.as_deref(), &cfg.key_file).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The signing key (required).
    fn key(&self, cfg: &Config) -> Result<keys::SigningKey> {
        keys::resolve(self.key_file.as_deref(), &cfg.key_file)
    }

    /// Open the journal (creating it on first use).
    fn journal(&self) -> Result<jobctl::journal::Journal> {
        jobctl::journal::Journal::open(&jobctl::journal::resolve_path(self.journal_flag.as_deref()))
    }

    /// Open the wallet (creating it on first use).
    async fn wallet(&self) -> Result<jobctl::wallet::LocalWallet> {
        jobctl::wallet::LocalWallet::open(&jobctl::wallet::resolve_dir(self.wallet_dir.as_deref()))
            .await
    }

    /// Open the journal only if it already exists (readers never create it).
    fn existing_journal(&self) -> Result<Option<jobctl::journal::Journal>> {
        let path = jobctl::journal::resolve_path(self.journal_flag.as_deref());
        if path.exists() {
            jobctl::journal::Journal::open(&path).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))
}

pub(crate) fn read_stdin(what: &str) -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Error::io(format!("cannot read {what} from stdin"), e))?;
    Ok(s.trim().to_string())
}

pub(crate) fn print_stdout(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    match writeln!(out, "{s}").and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("cannot write to stdout", e)),
    }
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))
}

/// `--relay` flags if any, else the configured (file + env) relays.
pub(crate) fn relays_for(cfg: &Config, flags: &[String]) -> Result<Vec<RelayUrl>> {
    if flags.is_empty() {
        Ok(cfg.relays.clone())
    } else {
        config::parse_relays(flags.iter().map(String::as_str))
            .map_err(|e| Error::input(format!("--relay: {e}")))
    }
}

/// Fail when no relay is known at all.
pub(crate) fn require_relays(urls: &[RelayUrl]) -> Result<()> {
    if urls.is_empty() {
        return Err(Error::input(
            "no relays: pass --relay URL, set JOBCTL_RELAYS, or add `relays` to the config",
        ));
    }
    Ok(())
}

/// `--min-accept` if given, else the config's; at least 1.
pub(crate) fn min_accept_for(flag: Option<usize>, cfg: &Config) -> Result<usize> {
    let n = flag.unwrap_or(cfg.min_accept);
    if n == 0 {
        return Err(Error::input("--min-accept must be at least 1"));
    }
    Ok(n)
}

/// `--timeout` if given, else `default`.
pub(crate) fn timeout_for(
    flag: Option<&str>,
    default: std::time::Duration,
) -> Result<std::time::Duration> {
    match flag {
        Some(t) => config::parse_duration(t).map_err(|e| Error::input(format!("--timeout: {e}"))),
        None => Ok(default),
    }
}

fn key(ctx: &Ctx, cmd: KeyCommand) -> Result<i32> {
    let cfg = ctx.config()?;
    let path = ctx.key_file.clone().unwrap_or_else(|| cfg.key_file.clone());
    match cmd {
        KeyCommand::Generate { force } => {
            let keys = keys::generate(&path, force)?;
            ctx.say(format!("wrote a new key to {} (mode 0600)", path.display()));
            print_stdout(&npub(&keys.public_key()))?;
        }
        KeyCommand::Import { key, force } => {
            let text = match key.as_deref() {
                None | Some("-") => {
                    if std::io::stdin().is_terminal() {
                        rpassword::prompt_password("secret key (nsec, hex or ncryptsec): ")
                            .map_err(|e| Error::io("cannot read the key", e))?
                    } else {
                        read_stdin("the key")?
                    }
                }
                Some(k) => k.to_string(),
            };
            let keys = keys::import(&path, &text, force)?;
            ctx.say(format!(
                "imported the key into {} (mode 0600)",
                path.display()
            ));
            print_stdout(&npub(&keys.public_key()))?;
        }
        KeyCommand::Show { json } => {
            let key = keys::resolve(ctx.key_file.as_deref(), &cfg.key_file)?;
            let pk = key.keys.public_key();
            if json {
                let v = serde_json::json!({
                    "npub": npub(&pk),
                    "hex": pk.to_hex(),
                    "source": key.source.to_string(),
                });
                print_stdout(&v.to_string())?;
            } else {
                ctx.say(format!("key from {}", key.source));
                print_stdout(&format!("{}\n{}", npub(&pk), pk.to_hex()))?;
            }
        }
    }
    Ok(exit::OK)
}

fn config_cmd(ctx: &Ctx, cmd: ConfigCommand) -> Result<i32> {
    match cmd {
        ConfigCommand::Path => {
            let (path, _) = config::config_path(ctx.config_flag.as_deref());
            print_stdout(&path.display().to_string())?;
        }
        ConfigCommand::Show => {
            let cfg = ctx.config()?;
            if !cfg.loaded {
                ctx.say(format!(
                    "# {} does not exist; showing defaults",
                    cfg.path.display()
                ));
            }
            print_stdout(cfg.to_toml().trim_end())?;
        }
        ConfigCommand::Init { force } => {
            let (path, _) = config::config_path(ctx.config_flag.as_deref());
            if path.exists() && !force {
                return Err(Error::Config {
                    path,
                    msg: "already exists; pass --force to overwrite it".into(),
                });
            }
            if let Some(dir) = path.parent() {
                keys::create_private_dir(dir)?;
            }
            std::fs::write(&path, config::TEMPLATE)
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
            ctx.say(format!("wrote {}", path.display()));
            print_stdout(&path.display().to_string())?;
        }
    }
    Ok(exit::OK)
}

fn completions(shell: Shell) -> Result<i32> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "jobctl", &mut std::io::stdout());
    Ok(exit::OK)
}
