//! What every task of a running worker shares: its config, relay client,
//! keys, wallet and opened mints, blob store, job slots and the sets of
//! seen, queued and cancelled jobs; and the few ways it speaks (status,
//! result, advertisement), all through the protocol's builders.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nostr_sdk::prelude::*;
use tokio::sync::{watch, Semaphore};

use super::announce::advertisement;
use super::WorkerConfig;
use crate::blobs::{BlobServer, BlobStore};
use crate::error::Result;
use crate::job_state::JobState;
use crate::protocol::{status_update, ResultReport};
use crate::wallet::{self, LocalWallet};

pub(super) struct Shared {
    pub(super) cfg: WorkerConfig,
    pub(super) client: Client,
    pub(super) relays: Vec<RelayUrl>,
    pub(super) keys: Keys,
    pub(super) wallet: LocalWallet,
    /// One cdk wallet per mint, opened (and crash-recovered) once: cdk's
    /// saga recovery must not run while other jobs' sagas are in flight.
    pub(super) mints: tokio::sync::Mutex<HashMap<String, cdk::wallet::Wallet>>,
    /// Change is made one job at a time: concurrent sends would reserve
    /// each other's proofs and shrink each other's change.
    pub(super) change_lock: tokio::sync::Mutex<()>,
    pub(super) store: BlobStore,
    pub(super) blob_base: String,
    pub(super) slots: Arc<Semaphore>,
    pub(super) cancelled: Mutex<HashSet<EventId>>,
    pub(super) seen: Mutex<HashSet<EventId>>,
    pub(super) queued: Mutex<HashMap<EventId, PublicKey>>,
    pub(super) shutdown: watch::Receiver<bool>,
}

/// A worker's shared state, its blob server, and the switch that stops it.
pub(super) type Opened = (Arc<Shared>, BlobServer, watch::Sender<bool>);

impl Shared {
    /// Open the wallet, the blob store and server, and connect to `relays`.
    pub(super) async fn open(cfg: WorkerConfig, keys: Keys, relays: &[RelayUrl]) -> Result<Opened> {
        let wallet_dir = cfg
            .wallet_dir
            .clone()
            .unwrap_or_else(|| wallet::resolve_dir(None));
        let wallet = LocalWallet::open(&wallet_dir).await?;
        let blob_dir = cfg
            .blob_dir
            .clone()
            .unwrap_or_else(|| crate::config::data_dir().join("worker-blobs"));
        let store = BlobStore::open(&blob_dir)?;
        let server = BlobServer::start(store.clone(), cfg.blob_addr).await?;
        let client = Client::builder()
            .signer(keys.clone())
            .opts(ClientOptions::new().automatic_authentication(true))
            .build();
        for r in relays {
            let _ = client.add_relay(r.clone()).await;
        }
        client.connect().await;
        client.wait_for_connection(Duration::from_secs(5)).await;
        let (stop, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(cfg.concurrency)),
            cfg,
            client,
            relays: relays.to_vec(),
            keys,
            wallet,
            mints: tokio::sync::Mutex::new(HashMap::new()),
            change_lock: tokio::sync::Mutex::new(()),
            store,
            blob_base: server.base.clone(),
            cancelled: Mutex::new(HashSet::new()),
            seen: Mutex::new(HashSet::new()),
            queued: Mutex::new(HashMap::new()),
            shutdown,
        });
        Ok((shared, server, stop))
    }

    /// The bound on every single call to a mint.
    pub(super) fn mint_timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.mint_timeout.max(1))
    }

    /// Sign and send; a failure is logged (the next step goes on).
    pub(super) async fn publish(&self, b: EventBuilder) {
        match b.sign_with_keys(&self.keys) {
            Ok(ev) => {
                if let Err(e) = self.client.send_event(&ev).await {
                    tracing::warn!("publish failed: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot sign: {e}"),
        }
    }

    /// Publish the status of `job`.
    pub(super) async fn report_status(&self, job: &Event, state: JobState, message: &str) {
        self.publish(status_update(&job.id, &job.pubkey, state, message))
            .await;
    }

    /// Publish the result of `job`.
    pub(super) async fn report_result(&self, job: &Event, report: &ResultReport) {
        self.publish(report.to_builder(&job.id, &job.pubkey)).await;
    }

    /// Publish the advertisement with the current queue depth.
    pub(super) async fn advertise(&self) {
        let depth = self.queued.lock().map(|q| q.len()).unwrap_or(0);
        self.publish(advertisement(&self.cfg, &self.keys.public_key(), depth))
            .await;
    }

    /// Whether `id` is new to this worker (and mark it seen).
    pub(super) fn first_sight(&self, id: EventId) -> bool {
        self.seen.lock().map(|mut s| s.insert(id)).unwrap_or(false)
    }

    /// Whether the job's author cancelled `id` while it waited.
    pub(super) fn is_cancelled(&self, id: &EventId) -> bool {
        self.cancelled
            .lock()
            .map(|c| c.contains(id))
            .unwrap_or(false)
    }
}
