//! The command line: the top-level flags and the verbs. Each verb lives in
//! its own file beside its flags (clap derive, documented where defined;
//! `jobctl help <command>` shows these texts) and its `run()`, which only
//! resolves inputs, calls the library and renders.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use jobctl::error::Result;
use jobctl::settings::{GlobalFlags, Settings};

mod batch;
mod cancel;
mod ci;
mod completions;
mod config;
mod ctx;
mod key;
mod list;
mod logs;
mod parse;
mod read;
mod reclaim;
#[cfg(test)]
mod reference;
pub(crate) mod render;
mod render_jobs;
mod republish;
mod rerun;
mod runs;
mod show;
mod stats;
mod status;
mod wallet;
mod watch;
mod worker;
mod workers;

pub(crate) use cancel::CancelArgs;
pub(crate) use completions::Shell;
pub(crate) use config::ConfigCommand;
pub(crate) use ctx::*;
pub(crate) use key::KeyCommand;
pub(crate) use list::ListArgs;
pub(crate) use logs::LogsArgs;
pub(crate) use parse::parse;
pub(crate) use read::ReadArgs;
pub(crate) use reclaim::ReclaimArgs;
pub(crate) use republish::RepublishArgs;
pub(crate) use rerun::RerunArgs;
pub(crate) use show::ShowArgs;
pub(crate) use stats::StatsArgs;
pub(crate) use status::StatusArgs;
pub(crate) use wallet::WalletCommand;
pub(crate) use watch::WatchArgs;
pub(crate) use worker::WorkerArgs;
pub(crate) use workers::WorkersArgs;

pub const EXIT_CODES: &str = "\
EXIT CODES:
    0    success (rerun: at least --min-accept relays accepted the job)
    1    runtime failure, including running out of --timeout (`error: timed
         out after ...`); rerun/republish: fewer than --min-accept relays
         accepted; watch --exit-status: a job failed, errored or was
         cancelled; watch/status/show/logs/cancel: a job or its result was
         not found
    2    bad input or usage; nothing was signed or published
    124  watch: --timeout passed before the job finished";

/// A Nostr-native job dispatcher for Loom workers.
///
/// stdout carries data only (event ids, states, log bodies, or JSON with
/// --json); tables, progress and logs go to stderr.
#[derive(Debug, Parser)]
// `jobctl --version`: "jobctl 0.1.0 (commit 0e8b58d1a2b3)"; build.rs sets JOBCTL_COMMIT.
#[command(
    name = "jobctl",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("JOBCTL_COMMIT"), ")"),
    about,
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Globals,

    #[command(subcommand)]
    pub command: Command,
}

/// The flags every verb takes (before or after it).
#[derive(Debug, clap::Args)]
pub struct Globals {
    /// Config file [default: $XDG_CONFIG_HOME/jobctl/config.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Signing key file; beats $JOBCTL_SECRET_KEY and the config's key_file.
    #[arg(long, global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Journal database [default: $XDG_DATA_HOME/jobctl/journal.sqlite; env: JOBCTL_JOURNAL].
    #[arg(long, global = true, value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Wallet directory [default: $XDG_DATA_HOME/jobctl/wallet; env: JOBCTL_WALLET_DIR].
    #[arg(long = "wallet", global = true, value_name = "DIR")]
    pub wallet_dir: Option<PathBuf>,

    /// More logging on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print nothing on stderr but errors and warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, sign and publish a kind 5100 job request to every relay.
    #[command(after_help = EXIT_CODES)]
    Rerun(Box<RerunArgs>),
    /// The local Cashu wallet: balance, mints, receive, send, mint, pay, check.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Redeem into the wallet what jobs owe back: change, or the payment of
    /// jobs that failed without change, went stale, or whose lock expired.
    #[command(after_help = EXIT_CODES)]
    Reclaim(ReclaimArgs),
    /// Serve jobs: the reference Loom worker (runs until SIGINT/SIGTERM).
    Worker(WorkerArgs),
    /// Cancel one of your jobs with a NIP-09 deletion request.
    #[command(after_help = EXIT_CODES)]
    Cancel(CancelArgs),
    /// Publish journaled jobs that never reached a relay.
    #[command(after_help = EXIT_CODES)]
    Republish(RepublishArgs),
    /// Jobs by status, success rate, durations and money, from the journal.
    #[command(after_help = EXIT_CODES)]
    Stats(StatsArgs),
    /// Watch jobs live until they finish (like `gh run watch`).
    #[command(after_help = EXIT_CODES)]
    Watch(WatchArgs),
    /// One-shot state of one or many jobs.
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// A job in full: request, status timeline, result.
    #[command(after_help = EXIT_CODES)]
    Show(ShowArgs),
    /// Print a job's stdout (or stderr) log to stdout, verified when content addressed.
    #[command(after_help = EXIT_CODES)]
    Logs(LogsArgs),
    /// Your jobs on the relays, newest first, with their state.
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Workers that advertise themselves (kind 10100).
    #[command(after_help = EXIT_CODES)]
    Workers(WorkersArgs),
    /// Manage the signing key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show or create the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// A repository's Hive CI runs, newest first (like `gh run list`).
    Runs(runs::RunsArgs),
    /// Hive CI helpers for runner scripts (`ci report`).
    #[command(subcommand)]
    Ci(ci::CiCommand),
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell.
        shell: Shell,
    },
}

/// Run the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let settings = Settings::resolve(GlobalFlags {
        config: cli.global.config,
        key_file: cli.global.key_file,
        journal: cli.global.journal,
        wallet_dir: cli.global.wallet_dir,
    })
    .with_passphrase_prompt(key::ask_passphrase);
    let ctx = Ctx::new(settings, cli.global.quiet);
    match cli.command {
        Command::Rerun(args) => rerun::run(&ctx, *args),
        Command::Wallet(c) => wallet::run(&ctx, c),
        Command::Reclaim(a) => reclaim::run(&ctx, a),
        Command::Worker(a) => worker::run(&ctx, a),
        Command::Cancel(a) => cancel::run(&ctx, a),
        Command::Republish(a) => republish::run(&ctx, a),
        Command::Stats(a) => stats::run(&ctx, a),
        Command::Watch(a) => watch::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Show(a) => show::run(&ctx, a),
        Command::Logs(a) => logs::run(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Workers(a) => workers::run(&ctx, a),
        Command::Key(cmd) => key::run(&ctx, cmd),
        Command::Config(cmd) => config::run(&ctx, cmd),
        Command::Runs(a) => runs::run(&ctx, a),
        Command::Ci(cmd) => ci::run(&ctx, cmd),
        Command::Completions { shell } => completions::run(&ctx, shell),
    }
}
