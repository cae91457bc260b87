//! Command-line definitions (clap derive). Each flag is documented where it
//! is defined; `jobctl help <command>` shows these texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

    #[command(subcommand)]
    pub command: Command,
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
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell.
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// A past job to run again (hex, note1, nevent1; from the journal or the
    /// relays): same worker, cmd, args, env and parent, with a fresh token.
    /// Flags given as well override the original's values.
    #[arg(value_name = "JOB", conflicts_with = "batch")]
    pub job: Option<String>,

    /// Dispatch many jobs from an NDJSON file (`-` for stdin), one job spec
    /// per line: {"worker", "cmd", "args", "env", "secrets", "token",
    /// "unpaid", "idempotency_key", "p", "run"}. --worker, --cmd, --env,
    /// --run, --p and ARGS give defaults that a line's own values override.
    #[arg(long, value_name = "FILE")]
    pub batch: Option<String>,

    /// Jobs published at once with --batch.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub concurrency: usize,

    /// Make retries safe: the first call with this key dispatches; later
    /// calls sign nothing new, spend no token, print the same id and
    /// republish to relays that have not accepted it yet. [env: JOBCTL_IDEMPOTENCY_KEY]
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,

    /// Cashu token paying for the job (cashuA... or cashuB...); `-` reads it
    /// from stdin. Prefer $JOBCTL_TOKEN or stdin: argv is visible to other users.
    /// [env: JOBCTL_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Send the job without a payment tag (for free workers that allow you);
    /// $JOBCTL_TOKEN is then ignored.
    #[arg(long, conflicts_with_all = ["token", "amount"])]
    pub unpaid: bool,

    /// Pay this many sat from the local wallet (a fresh token is made).
    #[arg(long, value_name = "SAT", conflicts_with = "token")]
    pub amount: Option<u64>,

    /// How a token the wallet makes (--amount, --lock) is written: `cashuA`
    /// (V3 with full keyset ids, which every client decodes offline) or
    /// `cashuB` (V4) [default: config `token_format`, else cashuA]. A token
    /// you pass is published as given.
    #[arg(long, value_name = "cashuA|cashuB", value_parser = |s: &str| s.parse::<jobctl::wallet::TokenFormat>())]
    pub token_format: Option<jobctl::wallet::TokenFormat>,

    /// The job's input, put in the request's content (read by the worker
    /// as the command's stdin); `-` reads stdin. At most 64 KiB; cannot be
    /// combined with `--token -`.
    #[arg(long = "stdin", value_name = "FILE|-")]
    pub stdin: Option<String>,

    /// Mint to pay from with --amount [default: one the worker accepts
    /// (its advertisement) that holds enough balance].
    #[arg(long, value_name = "URL", requires = "amount", value_parser = jobctl::payment::parse_mint_url)]
    pub mint: Option<String>,

    /// Refuse when the worker's advertised rate times --duration exceeds this (sat).
    #[arg(long, value_name = "SAT")]
    pub max_price: Option<u64>,

    /// Expected run time in seconds, for --max-price [default: the worker's
    /// min_duration, else 60].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,

    /// Lock the payment to the worker's key (NUT-11 P2PK); after
    /// --refund-after your own key can take it back.
    #[arg(long, conflicts_with = "unpaid")]
    pub lock: bool,

    /// Locktime of a --lock payment, e.g. 72h.
    #[arg(long, value_name = "DURATION", default_value = "72h")]
    pub refund_after: String,

    /// Skip the pre-flight NUT-07 check of --token with its mint (offline use).
    #[arg(long, conflicts_with = "require_check")]
    pub no_check: bool,

    /// Fail (instead of warning) when the token's mint cannot be reached for the check.
    #[arg(long)]
    pub require_check: bool,

    /// Fail (instead of warning) when the worker's advertisement does not list the token's mint.
    #[arg(long)]
    pub strict: bool,

    /// Worker pubkey (npub or hex) [default: config `worker` or $JOBCTL_WORKER].
    #[arg(long, value_name = "PUBKEY")]
    pub worker: Option<String>,

    /// Relay URL; repeat for several. Replaces the configured list and $JOBCTL_RELAYS.
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Command the worker runs [default: config `cmd`, else `act`].
    #[arg(long, value_name = "CMD")]
    pub cmd: Option<String>,

    /// Plain environment variable for the job; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Secret environment variable, NIP-44 encrypted to the worker; repeatable.
    /// `--secret KEY` alone takes the value from your own environment.
    #[arg(long = "secret", value_name = "KEY[=VALUE]")]
    pub secrets: Vec<String>,

    /// Parent event id (e.g. a 5401 workflow run), sent as the `e` tag.
    #[arg(long, value_name = "EVENT_ID")]
    pub run: Option<String>,

    /// Who the `p` tag addresses: `worker` (default), `self`, or a pubkey.
    #[arg(long = "p", value_name = "worker|self|PUBKEY")]
    pub p_tag: Option<String>,

    /// Bound on the whole command: looking up a past job or the worker's
    /// advertisement, mint calls and the publish, e.g. 10s, 500ms
    /// [default: config timeouts.publish, else 10s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Relays that must accept for exit 0 [default: config, else 1].
    #[arg(long, value_name = "N")]
    pub min_accept: Option<usize>,

    /// Print the signed event JSON on stdout and publish nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON object on stdout instead of the event id.
    #[arg(long)]
    pub json: bool,

    /// Arguments for the command, after `--`; all go in one `args` tag
    /// [default: config `args`].
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job to cancel (one of yours).
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Send the cancel even if the job already finished.
    #[arg(long)]
    pub force: bool,

    /// Reason, sent as the deletion request's content.
    #[arg(
        long,
        default_value = "cancelled by the requester",
        value_name = "TEXT"
    )]
    pub reason: String,

    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct RepublishArgs {
    /// Journaled jobs to publish (again).
    #[arg(value_name = "JOB", required_unless_present = "all")]
    pub jobs: Vec<String>,

    /// Every journaled job that no relay has accepted yet.
    #[arg(long, conflicts_with = "jobs")]
    pub all: bool,

    /// Relays that must accept each job for exit 0 [default: config, else 1].
    #[arg(long, value_name = "N")]
    pub min_accept: Option<usize>,

    /// Print one JSON object per job on stdout.
    #[arg(long)]
    pub json: bool,

    /// Relay URL; repeat for several [default: each job's own relays, else the config's].
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Bound on the whole command, every job's publish included
    /// [default: config timeouts.publish, else 10s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only jobs created at or after: unix seconds (9+ digits), YYYY-MM-DD
    /// (UTC), or an age (90s, 24h, 7d; a short bare number is seconds ago).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Spendable balance per mint and unit (plus amounts sent but not yet redeemed).
    Balance {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Mints this wallet has used.
    Mints {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Redeem a token into the wallet (`-` or absent reads stdin).
    Receive {
        /// The token.
        token: Option<String>,
        /// Bound on the whole command, every mint call included
        /// [default: config timeouts.mint, else 30s].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Take AMOUNT sat out of the wallet as a token, printed on stdout.
    Send {
        /// Amount in sat.
        amount: u64,
        /// Mint to send from [default: the one with the largest balance].
        #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
        mint: Option<String>,
        /// Bound on the whole command, every mint call included
        /// [default: config timeouts.mint, else 30s].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Buy AMOUNT sat of ecash at a mint over Lightning: prints the invoice,
    /// waits for payment, claims the proofs.
    Mint {
        /// Amount in sat.
        amount: u64,
        /// The mint.
        #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
        mint: String,
        /// Bound on the whole command: the quote, waiting for the invoice
        /// to be paid, and claiming the proofs.
        #[arg(long, default_value = "10m", value_name = "DURATION")]
        timeout: String,
    },
    /// Pay a Lightning invoice with ecash (melt).
    Pay {
        /// The BOLT11 invoice.
        bolt11: String,
        /// Mint to pay from [default: the one with the largest balance].
        #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
        mint: Option<String>,
        /// Bound on the whole command, every mint call included
        /// [default: config timeouts.mint, else 30s].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Reconcile the wallet with its mints and report what was fixed:
    /// finish or roll back operations a crash or kill cut off, mark proofs
    /// the mint says are spent, release reserved proofs of dead operations,
    /// and take back tokens made but never journaled or handed out.
    Check {
        /// Only this mint [default: every mint in the wallet].
        #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
        mint: Option<String>,
        /// Bound on the whole check, every mint included.
        #[arg(long, default_value = "30s", value_name = "DURATION")]
        timeout: String,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Worker config file (TOML: name, allow_cmds, allow_clients,
    /// unpaid_clients, price_per_second, mints, min_duration, max_duration,
    /// concurrency, blob_dir, blob_addr, wallet_dir, advertise_every,
    /// mint_timeout, catch_up, token_format, freelist, freelist_timeout;
    /// durations in seconds).
    #[arg(long = "worker-config", value_name = "PATH")]
    pub worker_config: Option<PathBuf>,

    /// Allow a command (repeatable; replaces the config's list; default `act`).
    #[arg(long = "allow-cmd", value_name = "CMD")]
    pub allow_cmds: Vec<String>,

    /// Price in sat per second (0 = free worker for --unpaid-client keys).
    #[arg(long, value_name = "SAT")]
    pub price: Option<u64>,

    /// Accepted mint (repeatable).
    #[arg(long = "accept-mint", value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
    pub mints: Vec<String>,

    /// Client allowed to send unpaid jobs (repeatable).
    #[arg(long = "unpaid-client", value_name = "PUBKEY")]
    pub unpaid_clients: Vec<String>,

    /// Jobs run at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Hard limit on one run, in seconds.
    #[arg(long, value_name = "SECS")]
    pub max_duration: Option<u64>,

    /// Minimum billed duration, in seconds.
    #[arg(long, value_name = "SECS")]
    pub min_duration: Option<u64>,

    /// On start, also take open jobs addressed to this worker published
    /// this long ago at most (e.g. 24h; 0 = only new jobs) [default: 24h].
    #[arg(long = "catch-up", value_name = "DURATION")]
    pub catch_up: Option<String>,

    /// Upper bound on every call to a mint (e.g. 30s) [default: 30s].
    #[arg(long = "mint-timeout", value_name = "DURATION")]
    pub mint_timeout: Option<String>,

    /// Pubkey whose unpaid jobs run free (repeatable; replaces the config's
    /// `freelist`). Published as a NIP-51 list and named in the ad.
    #[arg(long = "freelist", value_name = "PUBKEY")]
    pub freelist: Vec<String>,

    /// Longest free run of a freelisted pubkey, e.g. 10m [default: 600s].
    #[arg(long = "freelist-timeout", value_name = "DURATION")]
    pub freelist_timeout: Option<String>,

    /// Relay URL; repeat for several [default: the configured relays].
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReclaimArgs {
    /// Jobs to reclaim (journaled ones: the journal holds their tokens).
    #[arg(value_name = "JOB", required_unless_present = "all")]
    pub jobs: Vec<String>,

    /// Every eligible published job in the journal.
    #[arg(long, conflicts_with = "jobs")]
    pub all: bool,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

/// Where to read from: relays and a time bound.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Relay URL; repeat for several. Replaces the configured list and
    /// $JOBCTL_RELAYS (relay hints of nevent references are still added).
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Bound on the whole command: every relay lookup, publish and mint
    /// call, e.g. 10s [default: config timeouts.query, else 10s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Job ids (hex, note1, nevent1); `-` reads them from stdin, one per line.
    #[arg(required = true, value_name = "JOB")]
    pub jobs: Vec<String>,

    /// Exit 0 when every job succeeded, 1 when one failed, errored or was cancelled.
    #[arg(long)]
    pub exit_status: bool,

    /// Print NDJSON on stdout: one object per update.
    #[arg(long)]
    pub json: bool,

    /// Relay URL; repeat for several. Replaces the configured list and
    /// $JOBCTL_RELAYS (relay hints of nevent references are still added).
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,

    /// Bound on the whole command, loading the jobs included: give up after
    /// this long and exit 124 [default: wait forever; loading the jobs is
    /// then bounded by config timeouts.query].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Job ids (hex, note1, nevent1); `-` reads them from stdin.
    #[arg(required = true, value_name = "JOB")]
    pub jobs: Vec<String>,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Job id (hex, note1, nevent1), or `-` for the first id on stdin.
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Job id (hex, note1, nevent1), or `-` for the first id on stdin.
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Print the stderr log instead of stdout.
    #[arg(long)]
    pub stderr: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The journal alone: offline and instant.
    #[arg(long)]
    pub local: bool,

    /// Only jobs in this state (unpublished, pending, queued, running,
    /// success, failed, cancelled, error, unknown, stale); comma separated.
    #[arg(long, value_name = "STATE")]
    pub status: Option<String>,

    /// Only jobs for this worker (npub or hex).
    #[arg(long, value_name = "PUBKEY")]
    pub worker: Option<String>,

    /// Jobs of this requester [default: your key].
    #[arg(long, value_name = "PUBKEY")]
    pub author: Option<String>,

    /// Only jobs created at or after: unix seconds (9+ digits), YYYY-MM-DD
    /// (UTC), or an age (90s, 24h, 7d; a short bare number is seconds ago).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only jobs created at or before (same forms). For the next page, pass
    /// the value printed under the table (jobs sharing the boundary second
    /// with the last row may be skipped).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// At most this many jobs, fetched before --status and --worker filter them.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// Only workers whose advertisement is under 5 minutes old.
    #[arg(long)]
    pub online: bool,

    /// Only workers that accept this mint.
    #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
    pub mint: Option<String>,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a new key file (mode 0600) and print its npub.
    Generate {
        /// Replace an existing key file (the old key is lost).
        #[arg(long)]
        force: bool,
    },
    /// Import a key (nsec, hex or ncryptsec) from stdin, or the argument.
    ///
    /// An ncryptsec stays encrypted on disk; its passphrase is asked for, or
    /// read from $JOBCTL_KEY_PASSPHRASE.
    Import {
        /// The key; `-` or absent reads stdin (keeps it out of argv and history).
        key: Option<String>,
        /// Replace an existing key file (the old key is lost).
        #[arg(long)]
        force: bool,
    },
    /// Print the npub and hex public key (never the secret).
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented config file.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the effective config (file + environment) as TOML.
    Show,
    /// Print the config file path.
    Path,
}
