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

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nostr_sdk::prelude::*;
use serde::Deserialize;
use tokio::sync::{watch, Semaphore};

use crate::blobs::{BlobServer, BlobStore};
use crate::error::{Error, Result};
use crate::payment::PaymentToken;
use crate::protocol::{
    JobRequest, KIND_JOB_REQUEST, KIND_JOB_RESULT, KIND_JOB_STATUS, KIND_WORKER_AD,
};
use crate::wallet::{self, LocalWallet};

/// How the worker behaves. Every field has a safe default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Name in the advertisement.
    pub name: String,
    /// Commands it runs (no shell unless listed).
    pub allow_cmds: Vec<String>,
    /// Clients allowed to submit (empty: anyone).
    pub allow_clients: Vec<String>,
    /// Clients that may submit unpaid jobs.
    pub unpaid_clients: Vec<String>,
    /// Price in sat per second (0: free worker, unpaid jobs from `unpaid_clients`).
    pub price_per_second: u64,
    /// Mints it accepts payment from.
    pub mints: Vec<String>,
    /// Minimum billed duration (seconds).
    pub min_duration: u64,
    /// Hard limit on a run (seconds).
    pub max_duration: u64,
    /// Jobs run at once; the rest queue.
    pub concurrency: usize,
    /// Where logs are kept (served by the blob server).
    pub blob_dir: Option<PathBuf>,
    /// Blob server address (port 0 picks one).
    pub blob_addr: SocketAddr,
    /// Wallet directory [default: the jobctl wallet dir].
    pub wallet_dir: Option<PathBuf>,
    /// Seconds between advertisements.
    pub advertise_every: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            name: "jobctl reference worker".into(),
            allow_cmds: vec!["act".into()],
            allow_clients: vec![],
            unpaid_clients: vec![],
            price_per_second: 1,
            mints: vec![],
            min_duration: 10,
            max_duration: 3600,
            concurrency: 2,
            blob_dir: None,
            blob_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            wallet_dir: None,
            advertise_every: 120,
        }
    }
}

impl WorkerConfig {
    /// Parse a worker config file (TOML).
    pub fn from_toml(path: &std::path::Path, text: &str) -> Result<Self> {
        let c: WorkerConfig = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            msg: e.message().to_string(),
        })?;
        c.validate().map_err(|msg| Error::Config {
            path: path.to_path_buf(),
            msg,
        })?;
        Ok(c)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.concurrency == 0 {
            return Err("concurrency: must be at least 1".into());
        }
        if self.max_duration == 0 || self.min_duration > self.max_duration {
            return Err("min_duration/max_duration: need 0 < min <= max".into());
        }
        if self.price_per_second > 0 && self.mints.is_empty() {
            return Err("mints: a paid worker must accept at least one mint".into());
        }
        for k in self.allow_clients.iter().chain(&self.unpaid_clients) {
            crate::config::parse_pubkey(k).map_err(|e| format!("clients: {e}"))?;
        }
        Ok(())
    }
}

fn tag(name: &str, values: &[&str]) -> Tag {
    Tag::custom(
        TagKind::Custom(name.to_string().into()),
        values.iter().map(|v| v.to_string()),
    )
}

/// The advertisement event.
pub fn advertisement(cfg: &WorkerConfig, queue_depth: usize) -> EventBuilder {
    let content = serde_json::json!({
        "name": cfg.name,
        "description": "jobctl reference worker",
        "max_concurrent_jobs": cfg.concurrency,
        "current_queue_depth": queue_depth,
    });
    let mut tags = vec![
        tag("A", &[std::env::consts::ARCH]),
        tag("S", &["jobctl", env!("CARGO_PKG_VERSION")]),
        tag("min_duration", &[&cfg.min_duration.to_string()]),
        tag("max_duration", &[&cfg.max_duration.to_string()]),
    ];
    if cfg.price_per_second > 0 {
        for m in &cfg.mints {
            tags.push(tag(
                "price",
                &["second", &cfg.price_per_second.to_string(), "sat", m],
            ));
        }
    }
    EventBuilder::new(Kind::Custom(KIND_WORKER_AD), content.to_string()).tags(tags)
}

fn status(job: &Event, state: &str, msg: &str) -> EventBuilder {
    EventBuilder::new(Kind::Custom(KIND_JOB_STATUS), msg).tags([
        tag("d", &[&job.id.to_hex()]),
        Tag::event(job.id),
        Tag::public_key(job.pubkey),
        tag("status", &[state]),
    ])
}

/// What a finished (or refused, or cancelled) job reports.
#[derive(Debug, Default)]
struct Outcome {
    exit_code: i64,
    duration: f64,
    stdout: Option<String>,
    stderr: Option<String>,
    change: Option<String>,
}

fn result(job: &Event, o: &Outcome) -> EventBuilder {
    let mut tags = vec![
        Tag::event(job.id),
        Tag::public_key(job.pubkey),
        tag(
            "success",
            &[if o.exit_code == 0 { "true" } else { "false" }],
        ),
        tag("exit_code", &[&o.exit_code.to_string()]),
        tag("duration", &[&format!("{:.3}", o.duration)]),
    ];
    if let Some(u) = &o.stdout {
        tags.push(tag("stdout", &[u]));
    }
    if let Some(u) = &o.stderr {
        tags.push(tag("stderr", &[u]));
    }
    if let Some(c) = &o.change {
        tags.push(tag("change", &[c]));
    }
    EventBuilder::new(Kind::Custom(KIND_JOB_RESULT), "").tags(tags)
}

/// Why a job is refused (the `failed` status message).
fn validate(
    cfg: &WorkerConfig,
    req: &JobRequest,
    client: &PublicKey,
) -> std::result::Result<Option<PaymentToken>, String> {
    if !cfg.allow_cmds.contains(&req.cmd) {
        return Err(format!(
            "command `{}` is not allowed here (allowed: {})",
            req.cmd,
            cfg.allow_cmds.join(", ")
        ));
    }
    let listed = |list: &[String]| {
        list.iter()
            .filter_map(|k| crate::config::parse_pubkey(k).ok())
            .any(|k| k == *client)
    };
    if !cfg.allow_clients.is_empty() && !listed(&cfg.allow_clients) {
        return Err("client not allowed".into());
    }
    let Some(raw) = &req.payment else {
        if listed(&cfg.unpaid_clients) {
            return Ok(None);
        }
        return Err("payment required".into());
    };
    let token = PaymentToken::parse(raw).map_err(|e| format!("bad payment: {e}"))?;
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    if !cfg
        .mints
        .iter()
        .any(|m| norm(m) == norm(&token.info().mint))
    {
        return Err(format!(
            "mint {} not accepted (accepted: {})",
            token.info().mint,
            cfg.mints.join(", ")
        ));
    }
    let needed = cfg.price_per_second * cfg.min_duration;
    if token.info().amount < needed {
        return Err(format!(
            "payment {} sat is less than min_duration {} s x {} sat/s = {needed} sat",
            token.info().amount,
            cfg.min_duration,
            cfg.price_per_second
        ));
    }
    Ok(Some(token))
}

struct Shared {
    cfg: WorkerConfig,
    client: Client,
    keys: Keys,
    wallet: LocalWallet,
    store: BlobStore,
    blob_base: String,
    slots: Arc<Semaphore>,
    cancelled: Mutex<HashSet<EventId>>,
    seen: Mutex<HashSet<EventId>>,
    queued: Mutex<HashMap<EventId, PublicKey>>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    async fn publish(&self, b: EventBuilder) {
        match b.sign_with_keys(&self.keys) {
            Ok(ev) => {
                if let Err(e) = self.client.send_event(&ev).await {
                    tracing::warn!("publish failed: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot sign: {e}"),
        }
    }

    /// A plain token of `amount` back to the client (None for 0 or on failure).
    async fn change(&self, mint: &str, amount: u64) -> Option<String> {
        if amount == 0 {
            return None;
        }
        match self.wallet.send(mint, amount, None).await {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("cannot make change of {amount} sat: {e}");
                None
            }
        }
    }
}

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
            keys: keys.clone(),
            wallet,
            store,
            blob_base: server.base.clone(),
            cancelled: Mutex::new(HashSet::new()),
            seen: Mutex::new(HashSet::new()),
            queued: Mutex::new(HashMap::new()),
            shutdown,
        });
        shared.publish(advertisement(&shared.cfg, 0)).await;
        let me = keys.public_key();
        let mut rx = shared.client.notifications();
        let since = Timestamp::now();
        let _ = shared
            .client
            .subscribe(
                Filter::new()
                    .kind(Kind::Custom(KIND_JOB_REQUEST))
                    .pubkey(me)
                    .since(since),
                None,
            )
            .await;
        let _ = shared
            .client
            .subscribe(Filter::new().kind(Kind::EventDeletion).since(since), None)
            .await;
        let blob_base = shared.blob_base.clone();
        let task = tokio::spawn(async move {
            let _server = server;
            let mut shutdown = shared.shutdown.clone();
            let mut ad_tick =
                tokio::time::interval(Duration::from_secs(shared.cfg.advertise_every.max(1)));
            let mut jobs = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = ad_tick.tick() => {
                        let depth = shared.queued.lock().map(|q| q.len()).unwrap_or(0);
                        shared.publish(advertisement(&shared.cfg, depth)).await;
                    }
                    n = rx.recv() => match n {
                        Ok(RelayPoolNotification::Event { event, .. }) => {
                            let ev = (*event).clone();
                            if ev.kind == Kind::EventDeletion {
                                handle_cancel(&shared, &ev);
                            } else if ev.kind == Kind::Custom(KIND_JOB_REQUEST) {
                                let fresh = shared.seen.lock().map(|mut s| s.insert(ev.id)).unwrap_or(false);
                                if fresh {
                                    let s = shared.clone();
                                    jobs.spawn(async move { take_job(s, ev).await });
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => break,
                    },
                }
            }
            // Shutdown: every job in flight ends with a result (see run_job).
            while jobs.join_next().await.is_some() {}
            shared.client.shutdown().await;
        });
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

fn handle_cancel(shared: &Shared, ev: &Event) {
    let queued = shared.queued.lock().map(|q| q.clone()).unwrap_or_default();
    for t in ev.tags.iter() {
        let s = t.as_slice();
        if s.len() >= 2 && s[0] == "e" {
            if let Ok(id) = EventId::from_hex(&s[1]) {
                // Only the job's own author may cancel it.
                if queued.get(&id) == Some(&ev.pubkey) {
                    if let Ok(mut c) = shared.cancelled.lock() {
                        c.insert(id);
                    }
                }
            }
        }
    }
}

async fn take_job(shared: Arc<Shared>, job: Event) {
    let Some(req) = JobRequest::from_event(&job) else {
        return;
    };
    if req.worker != shared.keys.public_key() {
        return; // addressed to us by `p` but meant for another worker
    }
    let token = match validate(&shared.cfg, &req, &job.pubkey) {
        Ok(t) => t,
        Err(reason) => {
            shared.publish(status(&job, "failed", &reason)).await;
            return;
        }
    };
    // Take the payment before anything runs; a locked one needs our key.
    let mut paid = 0u64;
    let mut mint = String::new();
    if let Some(t) = &token {
        let key = match wallet::cashu_secret(shared.keys.secret_key()) {
            Ok(k) => k,
            Err(e) => {
                shared
                    .publish(status(&job, "failed", &format!("internal: {e}")))
                    .await;
                return;
            }
        };
        match shared.wallet.receive(t.expose(), vec![key]).await {
            Ok(a) => {
                paid = a;
                mint = t.info().mint.clone();
            }
            Err(e) => {
                shared
                    .publish(status(&job, "failed", &format!("payment refused: {e}")))
                    .await;
                return;
            }
        }
    }
    if let Ok(mut q) = shared.queued.lock() {
        q.insert(job.id, job.pubkey);
    }
    shared
        .publish(status(&job, "queued", "waiting for a free slot"))
        .await;
    let permit = shared.slots.clone().acquire_owned().await;
    if let Ok(mut q) = shared.queued.lock() {
        q.remove(&job.id);
    }
    let cancelled = shared
        .cancelled
        .lock()
        .map(|c| c.contains(&job.id))
        .unwrap_or(false);
    if cancelled || *shared.shutdown.borrow() {
        let why = if cancelled {
            "cancelled"
        } else {
            "worker shutting down"
        };
        let change = shared.change(&mint, paid).await;
        let state = if cancelled { "cancelled" } else { "failed" };
        shared
            .publish(result(
                &job,
                &Outcome {
                    exit_code: -1,
                    change,
                    ..Default::default()
                },
            ))
            .await;
        shared
            .publish(status(&job, state, &format!("{why}: full refund")))
            .await;
        return;
    }
    let _permit = permit;
    shared
        .publish(status(
            &job,
            "running",
            &format!("{} {}", req.cmd, req.args.join(" ")),
        ))
        .await;
    let price = shared.cfg.price_per_second;
    let paid_secs = paid.checked_div(price).unwrap_or(shared.cfg.max_duration);
    let limit = Duration::from_secs(paid_secs.min(shared.cfg.max_duration).max(1));
    let mut o = run_job(&shared, &job, &req, limit).await;
    let billed = (o.duration.ceil() as u64).max(shared.cfg.min_duration) * price;
    o.change = shared.change(&mint, paid.saturating_sub(billed)).await;
    // The result first: a client may stop listening at the terminal status.
    let state = if o.exit_code == 0 {
        "success"
    } else {
        "failed"
    };
    shared.publish(result(&job, &o)).await;
    shared
        .publish(status(
            &job,
            state,
            &format!("exit {} in {:.1}s", o.exit_code, o.duration),
        ))
        .await;
}

async fn run_job(shared: &Shared, job: &Event, req: &JobRequest, limit: Duration) -> Outcome {
    let mut cmd = tokio::process::Command::new(&req.cmd);
    cmd.args(&req.args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in &req.env {
        cmd.env(k, v);
    }
    for (k, ct) in &req.secrets {
        match nip44::decrypt(shared.keys.secret_key(), &job.pubkey, ct) {
            Ok(v) => {
                cmd.env(k, v);
            }
            Err(e) => tracing::warn!(job = %job.id, "cannot decrypt secret {k}: {e}"),
        }
    }
    let started = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let url = shared
                .store
                .put(format!("cannot start {}: {e}\n", req.cmd).as_bytes())
                .ok();
            return Outcome {
                exit_code: 127,
                duration: started.elapsed().as_secs_f64(),
                stderr: url.map(|h| format!("{}/{h}", shared.blob_base)),
                ..Default::default()
            };
        }
    };
    let mut shutdown = shared.shutdown.clone();
    let waited = tokio::select! {
        r = tokio::time::timeout(limit, child.wait_with_output()) => Some(r),
        _ = shutdown.changed() => None,
    };
    let duration = started.elapsed().as_secs_f64();
    let (exit_code, out, err) = match waited {
        Some(Ok(Ok(o))) => (
            o.status.code().map(i64::from).unwrap_or(-1),
            o.stdout,
            o.stderr,
        ),
        Some(Ok(Err(e))) => (-1, Vec::new(), format!("wait failed: {e}\n").into_bytes()),
        Some(Err(_)) => (
            124,
            Vec::new(),
            format!(
                "killed after {}s (paid-for or maximum duration)\n",
                limit.as_secs()
            )
            .into_bytes(),
        ),
        None => (
            143,
            Vec::new(),
            b"killed: the worker is shutting down\n".to_vec(),
        ),
    };
    let url = |b: &[u8]| {
        shared
            .store
            .put(b)
            .ok()
            .map(|h| format!("{}/{h}", shared.blob_base))
    };
    Outcome {
        exit_code,
        duration,
        stdout: url(&out),
        stderr: url(&err),
        change: None,
    }
}
