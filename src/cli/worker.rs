//! `jobctl worker`: run the reference worker until SIGINT/SIGTERM. Its
//! settings (flags over the `--worker-config` file) resolve in
//! [`jobctl::settings::Settings::worker_config`].

use clap::Args;
use jobctl::error::{exit, Error, Result};
use jobctl::keys::npub;
use jobctl::settings::WorkerFlags;
use jobctl::worker::Worker;

use super::{relays_for, require_relays, Ctx};

pub fn run(ctx: &Ctx, a: WorkerArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let relays = relays_for(&cfg, &a.relays)?;
    require_relays(&relays)?;
    let w = ctx.settings.worker_config(a.flags())?;
    let key = ctx.key(&cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    rt.block_on(async {
        let allowed = w.allow_cmds.join(", ");
        let worker = Worker::start(w, key.keys.clone(), &relays).await?;
        ctx.say(format!(
            "worker {} serving on {} relay(s); runs: {allowed}; logs at {}; stop with Ctrl-C",
            npub(&worker.pubkey),
            relays.len(),
            worker.blob_base
        ));
        ctx.print(&npub(&worker.pubkey))?;
        wait_for_signal().await;
        ctx.say("shutting down: running jobs end with a result");
        worker.shutdown().await;
        Ok(exit::OK)
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Worker config file (TOML: name, allow_cmds, allow_clients,
    /// unpaid_clients, price_per_second, mints, min_duration, max_duration,
    /// concurrency, blob_dir, blob_addr, wallet_dir, advertise_every,
    /// mint_timeout, catch_up, token_format, freelist, freelist_timeout;
    /// durations in seconds).
    #[arg(long = "worker-config", value_name = "PATH")]
    pub worker_config: Option<std::path::PathBuf>,

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

impl WorkerArgs {
    /// The flags that override the worker config file.
    fn flags(&self) -> WorkerFlags {
        WorkerFlags {
            worker_config: self.worker_config.clone(),
            allow_cmds: self.allow_cmds.clone(),
            price: self.price,
            mints: self.mints.clone(),
            unpaid_clients: self.unpaid_clients.clone(),
            concurrency: self.concurrency,
            max_duration: self.max_duration,
            min_duration: self.min_duration,
            catch_up: self.catch_up.clone(),
            mint_timeout: self.mint_timeout.clone(),
            freelist: self.freelist.clone(),
            freelist_timeout: self.freelist_timeout.clone(),
        }
    }
}
