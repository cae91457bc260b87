//! One function per subcommand: turn parsed flags into library calls and
//! print the results (data on stdout, humans on stderr).

use std::io::{IsTerminal, Read, Write};

use clap::CommandFactory;
use jobctl::config::{self, Config};
use jobctl::dispatch::{self, JobSpec};
use jobctl::error::{exit, Error, Result};
use jobctl::keys::{self, npub};
use jobctl::output;
use jobctl::payment::PaymentToken;
use jobctl::protocol::parse_key_value;
use nostr_sdk::prelude::*;

use crate::cli::{Cli, Command, ConfigCommand, KeyCommand, RerunArgs, Shell};

mod follow;

/// Run the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let ctx = Ctx {
        config_flag: cli.config,
        key_file: cli.key_file,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Rerun(args) => rerun(&ctx, *args),
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
    quiet: bool,
}

impl Ctx {
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

/// Resolve every rerun input into a validated spec; no key needed yet.
fn job_spec(cfg: &Config, a: &RerunArgs) -> Result<JobSpec> {
    let worker = match &a.worker {
        Some(w) => config::parse_pubkey(w).map_err(|e| Error::input(format!("--worker: {e}")))?,
        None => cfg.worker.ok_or_else(|| {
            Error::input(
                "no worker: pass --worker, set JOBCTL_WORKER, or set `worker` in the config",
            )
        })?,
    };
    let p_tag = match &a.p_tag {
        Some(p) => config::parse_p_tag(p).map_err(|e| Error::input(format!("--p: {e}")))?,
        None => cfg.p_tag,
    };
    let cmd = a.cmd.clone().unwrap_or_else(|| cfg.cmd.clone());
    if cmd.trim().is_empty() {
        return Err(Error::input("--cmd must not be empty"));
    }
    let args = if a.args.is_empty() {
        cfg.args.clone()
    } else {
        a.args.clone()
    };
    let env = a
        .env
        .iter()
        .map(|s| parse_key_value(s).map_err(|e| Error::input(format!("--env: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let secrets = a
        .secrets
        .iter()
        .map(|s| secret_value(s))
        .collect::<Result<Vec<_>>>()?;
    let parent = a
        .run
        .as_deref()
        .map(|r| {
            EventId::parse(r.trim()).map_err(|_| {
                Error::input(format!(
                    "--run: `{r}` is not an event id (hex, note1 or nevent1)"
                ))
            })
        })
        .transpose()?;
    let token = if a.unpaid {
        None
    } else {
        let from_env = std::env::var("JOBCTL_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty());
        let raw =
            match a.token.clone().or(from_env).as_deref() {
                Some("-") => read_stdin("the token")?,
                Some(t) => t.to_string(),
                None => return Err(Error::input(
                    "no payment token: pass --token (or `--token -` for stdin, or $JOBCTL_TOKEN), \
                     or --unpaid for a job without payment",
                )),
            };
        Some(PaymentToken::parse(&raw)?)
    };
    Ok(JobSpec {
        worker,
        p_tag,
        cmd,
        args,
        token,
        parent,
        env,
        secrets,
    })
}

/// `--secret KEY=VALUE`, or `--secret KEY` taking the value from the environment.
fn secret_value(s: &str) -> Result<(String, String)> {
    if s.contains('=') {
        return parse_key_value(s).map_err(|e| Error::input(format!("--secret: {e}")));
    }
    let (k, _) =
        parse_key_value(&format!("{s}=")).map_err(|e| Error::input(format!("--secret: {e}")))?;
    let v = std::env::var(&k)
        .map_err(|_| Error::input(format!("--secret {k}: no value given and ${k} is not set")))?;
    Ok((k, v))
}

fn rerun(ctx: &Ctx, a: RerunArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let relays = if a.relays.is_empty() {
        cfg.relays.clone()
    } else {
        config::parse_relays(a.relays.iter().map(String::as_str))
            .map_err(|e| Error::input(format!("--relay: {e}")))?
    };
    let timeout = match &a.timeout {
        Some(t) => {
            config::parse_duration(t).map_err(|e| Error::input(format!("--timeout: {e}")))?
        }
        None => cfg.publish_timeout,
    };
    let min_accept = a.min_accept.unwrap_or(cfg.min_accept);
    if min_accept == 0 {
        return Err(Error::input("--min-accept must be at least 1"));
    }
    let spec = job_spec(&cfg, &a)?;
    if !a.dry_run {
        if relays.is_empty() {
            return Err(Error::input(
                "no relays: pass --relay URL, set JOBCTL_RELAYS, or add `relays` to the config",
            ));
        }
        if min_accept > relays.len() {
            return Err(Error::input(format!(
                "--min-accept {min_accept} is more than the {} relay(s) configured",
                relays.len()
            )));
        }
    }
    let key = keys::resolve(ctx.key_file.as_deref(), &cfg.key_file)?;
    tracing::info!(key = ?key, "signing key");

    let req = dispatch::build(&spec, &key.keys)?;
    let event = dispatch::sign(&req, &key.keys)?;
    let payment = spec.token.as_ref().map(|t| t.info().clone());

    if a.dry_run {
        ctx.say(format!(
            "dry run: signed job {} not published ({})",
            event.id,
            payment_summary(&spec)
        ));
        print_stdout(&event.as_json())?;
        return Ok(exit::OK);
    }

    let color = output::stderr_color();
    if !a.json {
        ctx.say(format!(
            "dispatching `{}` to worker {} with {} via {} relay(s)",
            command_line(&spec),
            npub(&spec.worker),
            payment_summary(&spec),
            relays.len()
        ));
    }
    let rt = runtime()?;
    let report = rt.block_on(dispatch::publish(
        &key.keys, event, payment, &relays, timeout, min_accept,
    ));
    drop(rt);

    if a.json {
        print_stdout(&to_json(&report)?)?;
    } else {
        if ctx.quiet && !report.ok() {
            output::print_error(&format!(
                "job {} accepted by {}/{} relays (need {})",
                output::short_id(&report.id),
                report.accepted,
                report.relays.len(),
                report.min_accept
            ));
        }
        ctx.say(output::relay_table(&report.relays, color));
        let verdict = if report.ok() {
            output::paint("published", color, "32")
        } else {
            output::paint("NOT published", color, "1;31")
        };
        ctx.say(format!(
            "{verdict}: job {} accepted by {}/{} relays (need {})",
            output::short_id(&report.id),
            report.accepted,
            report.relays.len(),
            report.min_accept
        ));
        print_stdout(&report.id)?;
    }
    Ok(if report.ok() { exit::OK } else { exit::FAILURE })
}

fn command_line(spec: &JobSpec) -> String {
    std::iter::once(spec.cmd.as_str())
        .chain(spec.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn payment_summary(spec: &JobSpec) -> String {
    match &spec.token {
        Some(t) => format!("payment {t}"),
        None => "no payment (unpaid)".to_string(),
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
