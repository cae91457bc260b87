//! The reference Loom worker (`jobctl worker`): advertises itself (10100),
//! takes job requests addressed to it (5100, `#p` = its key), validates
//! them (allowed command and client, payment present, from an accepted
//! mint, enough for `min_duration`, unspent), swaps the payment into its
//! own wallet, runs the command without a shell under a time limit with a
//! bounded queue, and reports `queued` / `running` / `success` | `failed`
//! (30100) and a result (5101) with exit code, duration, log URLs from its
//! blob server, and change for unused time. A NIP-09 cancel before start
//! gets `cancelled` and a full refund; shutdown never leaves a paid job
//! without a result.
//!
//! Files: [`config`] (the TOML), `announce` (ad, relay list, freelist),
//! `catch_up` (jobs missed while down; cancels), `take` (checks, payment,
//! queue, report), `run` (the command), `pay` (mints, payment, change),
//! `shared` (state every task shares). Every event goes out through
//! [`crate::protocol`]'s builders.

use std::sync::Arc;
use std::time::Duration;

use nostr_sdk::prelude::*;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use crate::blobs::BlobServer;
use crate::error::{Error, Result};
use crate::protocol::{cancel_kinds, job_request_kind, CancelRequest};

mod announce;
mod catch_up;
pub mod config;
mod pay;
mod run;
mod shared;
mod take;

pub use announce::{advertisement, FREELIST_D};
pub use config::WorkerConfig;
pub use take::NOT_WHITELISTED;

use shared::Shared;
use take::{take_job, Arrival};

/// A running worker.
pub struct Worker {
    /// Its public key.
    pub pubkey: PublicKey,
    /// Base URL of its blob server.
    pub blob_base: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Start serving on `relays` with `keys`.
    pub async fn start(cfg: WorkerConfig, keys: Keys, relays: &[RelayUrl]) -> Result<Worker> {
        cfg.validate().map_err(Error::input)?;
        let (shared, server, stop) = Shared::open(cfg, keys.clone(), relays).await?;
        let me = keys.public_key();
        let rx = shared.client.notifications();
        let since = Timestamp::now();
        subscribe(&shared, me, since).await;
        // The relay list (NIP-65), the freelist (NIP-51) and the ad go out
        // together, while the accepted mints' wallets open (and
        // crash-recover) and the catch-up looks for open jobs: a silent
        // relay or mint costs one timeout, not one per step. No job runs
        // before all three are done.
        let ((), (), backlog) = tokio::join!(
            announce::announce(&shared, relays),
            shared.open_mints(),
            catch_up::catch_up(&shared, since)
        );
        let blob_base = shared.blob_base.clone();
        let task = tokio::spawn(serve(shared, server, backlog, rx));
        Ok(Worker {
            pubkey: me,
            blob_base,
            stop,
            task,
        })
    }

    /// Stop: refuse new jobs, end running ones with a result, then return.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Listen for job requests addressed to `me` and for cancels, from `since`.
async fn subscribe(shared: &Shared, me: PublicKey, since: Timestamp) {
    let jobs = Filter::new()
        .kind(job_request_kind())
        .pubkey(me)
        .since(since);
    let _ = shared.client.subscribe(jobs, None).await;
    let cancels = Filter::new().kinds(cancel_kinds()).since(since);
    let _ = shared.client.subscribe(cancels, None).await;
}

/// The worker's life after start: the caught-up jobs, then live jobs and
/// cancels, an advertisement every `advertise_every`; on shutdown, every
/// job in flight ends with a result (see `run`) before it returns.
async fn serve(
    shared: Arc<Shared>,
    server: BlobServer,
    backlog: Vec<(Event, Arrival)>,
    mut rx: broadcast::Receiver<RelayPoolNotification>,
) {
    let _server = server;
    let mut shutdown = shared.shutdown.clone();
    let mut stopping = false;
    let mut ad_tick = tokio::time::interval(Duration::from_secs(shared.cfg.advertise_every.max(1)));
    let mut jobs = JoinSet::new();
    for (ev, arrival) in backlog {
        let s = shared.clone();
        jobs.spawn(async move { take_job(s, ev, arrival).await });
    }
    while !stopping {
        tokio::select! {
            _ = shutdown.changed() => stopping = true,
            _ = ad_tick.tick() => shared.advertise().await,
            n = rx.recv() => stopping = !on_notification(&shared, &mut jobs, n),
        }
    }
    while jobs.join_next().await.is_some() {}
    shared.client.shutdown().await;
}

/// Handle one relay notification; `false` when the relay pool closed.
fn on_notification(
    shared: &Arc<Shared>,
    jobs: &mut JoinSet<()>,
    n: std::result::Result<RelayPoolNotification, RecvError>,
) -> bool {
    match n {
        Ok(RelayPoolNotification::Event { event, .. }) => {
            let ev = (*event).clone();
            if let Some(cancel) = CancelRequest::from_event(&ev) {
                catch_up::handle_cancel(shared, &cancel);
            } else if ev.kind == job_request_kind() && shared.first_sight(ev.id) {
                let s = shared.clone();
                jobs.spawn(async move { take_job(s, ev, Arrival::New).await });
            }
            true
        }
        Ok(_) | Err(RecvError::Lagged(_)) => true,
        Err(_) => false,
    }
}
