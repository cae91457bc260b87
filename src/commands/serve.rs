//! `jobctl worker`: run the reference worker until SIGINT/SIGTERM.

use jobctl::error::{exit, Error, Result};
use jobctl::keys::npub;
use jobctl::worker::{Worker, WorkerConfig};

use super::{print_stdout, relays_for, require_relays, Ctx};
use crate::cli::WorkerArgs;

pub fn worker(ctx: &Ctx, a: WorkerArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let relays = relays_for(&cfg, &a.relays)?;
    require_relays(&relays)?;
    let mut w = match &a.worker_config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::input(format!("--worker-config {}: {e}", p.display())))?;
            WorkerConfig::from_toml(p, &text)?
        }
        None => WorkerConfig::default(),
    };
    if !a.allow_cmds.is_empty() {
        w.allow_cmds = a.allow_cmds.clone();
    }
    if let Some(p) = a.price {
        w.price_per_second = p;
    }
    if !a.mints.is_empty() {
        w.mints = a.mints.clone();
    }
    if !a.unpaid_clients.is_empty() {
        w.unpaid_clients = a.unpaid_clients.clone();
    }
    if let Some(c) = a.concurrency {
        w.concurrency = c;
    }
    if let Some(d) = a.max_duration {
        w.max_duration = d;
    }
    if let Some(d) = a.min_duration {
        w.min_duration = d;
    }
    if let Some(d) = &a.catch_up {
        w.catch_up = if d.trim() == "0" {
            0
        } else {
            jobctl::config::parse_duration(d)
                .map_err(|e| Error::input(format!("--catch-up: {e}")))?
                .as_secs()
        };
    }
    if let Some(d) = &a.mint_timeout {
        w.mint_timeout = jobctl::config::parse_duration(d)
            .map_err(|e| Error::input(format!("--mint-timeout: {e}")))?
            .as_secs()
            .max(1);
    }
    if !a.freelist.is_empty() {
        w.freelist = a.freelist.clone();
    }
    if let Some(d) = &a.freelist_timeout {
        w.freelist_timeout = jobctl::config::parse_duration(d)
            .map_err(|e| Error::input(format!("--freelist-timeout: {e}")))?
            .as_secs()
            .max(1);
    }
    if w.wallet_dir.is_none() {
        w.wallet_dir = Some(jobctl::wallet::resolve_dir(ctx.wallet_dir.as_deref()));
    }
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
        print_stdout(&npub(&worker.pubkey))?;
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
