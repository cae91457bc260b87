//! `jobctl ci report`: for runner scripts on workers without other Nostr
//! tools. Signs with `$HIVE_CI_NSEC`, uploads the log to Blossom and
//! publishes the run's kind 5402 result; prints the 5402's id.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use jobctl::error::{Error, Result};
use jobctl::hive::exec::env;
use jobctl::hive::report::{self, Report};
use jobctl::protocol::JobRef;
use jobctl::settings::env_nonempty;
use nostr_sdk::prelude::*;

use super::render;
use super::{runtime, to_json, Ctx};

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Publish a workflow run's result (kind 5402) signed with
    /// $HIVE_CI_NSEC, after uploading the log to Blossom. Prints its id.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The workflow's exit code.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub exit_code: i64,

    /// The status word [default: success for exit code 0, else failure].
    #[arg(long, value_name = "WORD")]
    pub status: Option<String>,

    /// How long the workflow ran: seconds, or 90s, 2m, 1h.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// The log file to upload to Blossom (its URL goes in `log_url`).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// The run (5401 id: hex, note1, nevent1) [default: $HIVE_CI_RUN_ID].
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,

    /// Relay URL; repeat for several [default: $HIVE_CI_RELAYS, comma separated].
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Blossom server for the log [default: $HIVE_CI_BLOSSOM_SERVER].
    #[arg(long, value_name = "URL")]
    pub blossom: Option<String>,

    /// Bound on the whole command, e.g. 30s [default: config timeouts.publish].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Print JSON (id, log_url, relays) on stdout instead of the id.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, cmd: CiCommand) -> Result<i32> {
    match cmd {
        CiCommand::Report(a) => report_cmd(ctx, a),
    }
}

/// The flags and `HIVE_CI_*` resolved into a report, its relays and key;
/// every bad input is refused here, before anything is uploaded.
fn resolve(a: &ReportArgs) -> Result<(Report, Vec<RelayUrl>, Keys)> {
    let run_text = a
        .run
        .clone()
        .or_else(|| env_nonempty(env::RUN_ID))
        .ok_or_else(|| Error::input(format!("no run: pass --run ID or set {}", env::RUN_ID)))?;
    let run = JobRef::parse(&run_text)
        .map_err(|e| Error::input(format!("--run: {}", e.replace("job id", "run id"))))?
        .id;
    let relay_list: Vec<String> = if a.relays.is_empty() {
        env_nonempty(env::RELAYS)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    } else {
        a.relays.clone()
    };
    let urls = jobctl::config::parse_relays(
        relay_list
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty()),
    )
    .map_err(|e| Error::input(format!("relays: {e}")))?;
    let duration = a.duration.as_deref().map(parse_seconds).transpose()?;
    let nsec = env_nonempty(env::NSEC)
        .ok_or_else(|| Error::input(format!("{} is not set: it holds the run's key", env::NSEC)))?;
    let keys = jobctl::keys::parse_plain_secret(&nsec)
        .map_err(|_| Error::input(format!("{}: not a secret key (hex or nsec)", env::NSEC)))?;
    let log = match &a.log {
        Some(p) => Some(
            std::fs::read(p).map_err(|e| Error::input(format!("--log {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let r = Report {
        run,
        status: a.status.clone(),
        exit_code: a.exit_code,
        duration,
        log,
        blossom: a
            .blossom
            .clone()
            .or_else(|| env_nonempty(env::BLOSSOM_SERVER)),
    };
    r.check(&urls)?;
    Ok((r, urls, keys))
}

/// `--duration`: plain seconds (`0`, `61`, `1.5`), or `90s`, `2m`, `1h`.
fn parse_seconds(d: &str) -> Result<f64> {
    match d.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        Ok(_) => Err(Error::input(format!(
            "--duration: `{}` is negative or not finite",
            d.trim()
        ))),
        Err(_) => jobctl::config::parse_duration(d)
            .map(|d| d.as_secs_f64())
            .map_err(|e| Error::input(format!("--duration: {e}"))),
    }
}

fn report_cmd(ctx: &Ctx, a: ReportArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(a.timeout.as_deref(), cfg.publish_timeout)?;
    let (r, urls, keys) = resolve(&a)?;
    let out = runtime()?.block_on(report::report(&keys, &r, &urls, &deadline))?;
    if let Some(u) = &out.log_url {
        ctx.say(format!("log uploaded: {}", render::one_line(u)));
    }
    ctx.say(render::relay_table(&out.relays, render::stderr_color()));
    if out.accepted == 0 {
        return Err(Error::Relay(format!(
            "no relay accepted the workflow result: {}",
            jobctl::relays::failure_summary(&out.relays)
        )));
    }
    if a.json {
        let v = serde_json::json!({
            "id": out.id,
            "run": r.run.to_hex(),
            "log_url": out.log_url,
            "relays": out.relays,
            "accepted": out.accepted,
        });
        ctx.print(&to_json(&v)?)?;
    } else {
        ctx.print(&out.id)?;
    }
    Ok(0)
}
