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
    /// Upper bound, in seconds, on every single call to a mint (opening
    /// the wallet, taking a payment, each step of making change).
    pub mint_timeout: u64,
    /// On start, also take jobs addressed to this worker that were
    /// published up to this many seconds ago and have no terminal status
    /// or result from it yet (0: only jobs published from now on).
    pub catch_up: u64,
    /// How change tokens are written: `cashuA` (V3, default: every client
    /// decodes it offline) or `cashuB` (V4).
    pub token_format: String,
    /// Pubkeys whose unpaid jobs run free (published as a NIP-51 follow
    /// set, kind 30000, and named in the ad as `freelist_event`).
    pub freelist: Vec<String>,
    /// Longest free run for a freelisted pubkey, in seconds (advertised).
    pub freelist_timeout: u64,
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
            mint_timeout: 30,
            catch_up: 24 * 3600,
            token_format: "cashuA".into(),
            freelist: vec![],
            freelist_timeout: 600,
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
        if self.mint_timeout == 0 {
            return Err("mint_timeout: must be at least 1 second".into());
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
        for k in &self.freelist {
            crate::config::parse_pubkey(k).map_err(|e| format!("freelist: {e}"))?;
        }
        if self.freelist_timeout == 0 {
            return Err("freelist_timeout: must be at least 1 second".into());
        }
        self.token_format
            .parse::<wallet::TokenFormat>()
            .map_err(|e| format!("token_format: {e}"))?;
        Ok(())
    }
}

fn tag(name: &str, values: &[&str]) -> Tag {
    Tag::custom(
        TagKind::Custom(name.to_string().into()),
        values.iter().map(|v| v.to_string()),
    )
}

/// The `d` of the worker's freelist (NIP-51 follow set, kind 30000).
pub const FREELIST_D: &str = "loom-freelist";

/// The advertisement event of worker `me`.
pub fn advertisement(cfg: &WorkerConfig, me: &PublicKey, queue_depth: usize) -> EventBuilder {
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
    if !cfg.freelist.is_empty() {
        tags.push(tag(
            "freelist_event",
            &[&crate::protocol::freelist_address(me, FREELIST_D)],
        ));
        tags.push(tag(
            "freelist_timeout",
            &[&cfg.freelist_timeout.to_string()],
        ));
    }
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
    /// Why no (or less) change came back, for the result's content.
    note: Option<String>,
    /// The worker's reason for refusing or failing the job (`error` tag).
    error: Option<String>,
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
    if let Some(e) = &o.error {
        tags.push(tag("error", &[e]));
    }
    EventBuilder::new(
        Kind::Custom(KIND_JOB_RESULT),
        o.note.clone().unwrap_or_default(),
    )
    .tags(tags)
}

/// The words today's clients show for an unpaid job from a pubkey the
/// worker does not let run free.
pub const NOT_WHITELISTED: &str = "Pubkey not whitelisted for this worker";

/// How a job is paid for.
#[derive(Debug)]
enum Paid {
    /// With this token.
    Token(PaymentToken),
    /// Unpaid, from an `unpaid_clients` key (up to `max_duration`).
    Unpaid,
    /// Unpaid, from a freelisted key (up to `freelist_timeout`).
    Free,
}

/// Why a job is refused (the `failed` status message).
fn validate(
    cfg: &WorkerConfig,
    req: &JobRequest,
    client: &PublicKey,
) -> std::result::Result<Paid, String> {
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
            return Ok(Paid::Unpaid);
        }
        if listed(&cfg.freelist) {
            return Ok(Paid::Free);
        }
        return Err(NOT_WHITELISTED.into());
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
    Ok(Paid::Token(token))
}

struct Shared {
    cfg: WorkerConfig,
    client: Client,
    relays: Vec<RelayUrl>,
    keys: Keys,
    wallet: LocalWallet,
    /// One cdk wallet per mint, opened (and crash-recovered) once: cdk's
    /// saga recovery must not run while other jobs' sagas are in flight.
    mints: tokio::sync::Mutex<HashMap<String, cdk::wallet::Wallet>>,
    /// Change is made one job at a time: concurrent sends would reserve
    /// each other's proofs and shrink each other's change.
    change_lock: tokio::sync::Mutex<()>,
    store: BlobStore,
    blob_base: String,
    slots: Arc<Semaphore>,
    cancelled: Mutex<HashSet<EventId>>,
    seen: Mutex<HashSet<EventId>>,
    queued: Mutex<HashMap<EventId, PublicKey>>,
    shutdown: watch::Receiver<bool>,
}

/// Change handed back, or why not.
#[derive(Debug, Default)]
struct Change {
    token: Option<String>,
    /// What the client gets when it redeems the token.
    amount: u64,
    /// Mint fees paid for it (the swap, and the redemption the token includes).
    fees: u64,
    note: Option<String>,
}

fn norm_mint(s: &str) -> String {
    s.trim_end_matches('/').to_ascii_lowercase()
}

impl Shared {
    fn mint_timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.mint_timeout.max(1))
    }

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

    /// The cdk wallet for `mint`, opened once (bounded by the mint timeout).
    async fn mint_wallet(&self, mint: &str) -> std::result::Result<cdk::wallet::Wallet, String> {
        let mut map = self.mints.lock().await;
        if let Some(w) = map.get(&norm_mint(mint)) {
            return Ok(w.clone());
        }
        let t = self.mint_timeout();
        let w = tokio::time::timeout(t, self.wallet.wallet(mint))
            .await
            .map_err(|_| format!("mint {mint} did not answer within {}s", t.as_secs()))?
            .map_err(|e| e.to_string())?;
        map.insert(norm_mint(mint), w.clone());
        Ok(w)
    }

    /// Redeem the job's payment into the wallet; the amount credited (net
    /// of the mint's input fee).
    async fn take_payment(&self, t: &PaymentToken) -> std::result::Result<u64, String> {
        let mint = &t.info().mint;
        let w = self.mint_wallet(mint).await?;
        let key = wallet::cashu_secret(self.keys.secret_key()).map_err(|e| e.to_string())?;
        let opts = cdk::wallet::ReceiveOptions {
            p2pk_signing_keys: vec![key],
            ..Default::default()
        };
        let secs = self.cfg.mint_timeout.max(1);
        match tokio::time::timeout(self.mint_timeout(), w.receive(t.expose().trim(), opts)).await {
            Ok(Ok(a)) => Ok(a.into()),
            Ok(Err(e)) => {
                let s = e.to_string();
                if s.to_ascii_lowercase().contains("already spent") {
                    Err("the token is already spent".into())
                } else {
                    Err(s)
                }
            }
            Err(_) => Err(format!(
                "mint {mint} did not answer within {secs}s (if it took the token \
                 anyway, the worker's wallet recovers it on restart)"
            )),
        }
    }

    /// What the mint charges to redeem `proofs` proofs of its active keyset.
    async fn redeem_fee(&self, mint: &str, proofs: usize) -> u64 {
        let Ok(w) = self.mint_wallet(mint).await else {
            return 0;
        };
        let work = async {
            let id = w.active_keyset().await.ok()?.id;
            let fee = w
                .get_proofs_fee_by_count([(id, proofs as u64)].into_iter().collect())
                .await
                .ok()?;
            Some(u64::from(fee.total))
        };
        tokio::time::timeout(self.mint_timeout(), work)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Change of at most `budget` sat (what the client is owed) as a plain
    /// token, fee-aware: the token plus every mint fee it costs (the swap
    /// that makes it, and the redemption by the client, which the token
    /// includes) fits in `budget`, so the worker keeps what it billed and
    /// the mint's fees come out of the change. Every mint call is bounded;
    /// the whole thing takes at most about twice the mint timeout.
    async fn change(&self, mint: &str, budget: u64) -> Change {
        if budget == 0 {
            return Change::default();
        }
        let _one_at_a_time = self.change_lock.lock().await;
        let w = match self.mint_wallet(mint).await {
            Ok(w) => w,
            Err(e) => return no_change(budget, e),
        };
        let step = self.mint_timeout();
        let deadline = Instant::now() + step * 2;
        let mut amount = budget;
        let mut last = String::from("the mint's fees exceed it");
        // Each round either succeeds, aims lower, or spends time: the
        // deadline and the round limit end it either way. A failed swap is
        // tried once more.
        let mut failed_swaps = 0;
        for _ in 0..24 {
            if amount == 0 {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = format!("mint {mint} did not answer in time");
                break;
            }
            let t = step.min(left);
            let opts = cdk::wallet::SendOptions {
                include_fee: true,
                ..Default::default()
            };
            let prepared = match tokio::time::timeout(t, w.prepare_send(amount.into(), opts)).await
            {
                Err(_) => {
                    last = format!("mint {mint} did not answer within {}s", t.as_secs());
                    continue;
                }
                Ok(Err(cdk::Error::InsufficientFunds)) => {
                    last = "the worker's wallet cannot cover it".into();
                    amount -= 1;
                    continue;
                }
                Ok(Err(e)) => {
                    last = e.to_string();
                    break;
                }
                Ok(Ok(p)) => p,
            };
            let fee = u64::from(prepared.fee());
            if amount + fee > budget {
                // Release the reserved proofs (local only) and aim lower.
                let _ = tokio::time::timeout(t, prepared.cancel()).await;
                last = format!("the mint's fees ({fee} sat) leave nothing of it");
                let next = budget.saturating_sub(fee);
                amount = if next < amount { next } else { amount - 1 };
                continue;
            }
            match tokio::time::timeout(t, prepared.confirm(None)).await {
                Ok(Ok(token)) => {
                    let format = self.cfg.token_format.parse().unwrap_or_default();
                    return Change {
                        token: Some(wallet::encode_token(&w, &token, format).await),
                        amount,
                        fees: fee,
                        note: None,
                    };
                }
                Ok(Err(e)) => {
                    // A definite failure: cdk released the proofs.
                    last = e.to_string();
                    failed_swaps += 1;
                }
                Err(_) => {
                    // The swap may or may not have happened: its proofs stay
                    // reserved (recovered on restart); try again with others.
                    last = format!(
                        "mint {mint} did not answer within {}s while making change",
                        t.as_secs()
                    );
                    failed_swaps += 1;
                }
            }
            if failed_swaps >= 2 {
                break;
            }
        }
        no_change(budget, last)
    }
}

fn no_change(budget: u64, why: impl std::fmt::Display) -> Change {
    tracing::warn!("cannot make change of {budget} sat: {why}");
    Change {
        note: Some(format!("no change for the {budget} sat owed: {why}")),
        ..Default::default()
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
            relays: relays.to_vec(),
            keys: keys.clone(),
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
            .subscribe(
                Filter::new()
                    .kinds([
                        Kind::EventDeletion,
                        Kind::Custom(crate::protocol::KIND_JOB_CANCEL),
                    ])
                    .since(since),
                None,
            )
            .await;
        // The relay list (NIP-65), the freelist (NIP-51) and the ad go out
        // together, while the accepted mints' wallets open (and
        // crash-recover) and the catch-up looks for open jobs: a silent
        // relay or mint costs one timeout, not one per step. No job runs
        // before all three are done.
        let members: Vec<PublicKey> = shared
            .cfg
            .freelist
            .iter()
            .filter_map(|k| crate::config::parse_pubkey(k).ok())
            .collect();
        let announce = async {
            let freelist = async {
                if !members.is_empty() {
                    shared
                        .publish(crate::protocol::freelist(FREELIST_D, &members))
                        .await;
                }
            };
            tokio::join!(
                shared.publish(crate::protocol::relay_list(relays)),
                freelist,
                shared.publish(advertisement(&shared.cfg, &me, 0)),
            );
        };
        // A mint that is down is retried per job.
        let open_mints = async {
            for m in shared.cfg.mints.clone() {
                if let Err(e) = shared.mint_wallet(&m).await {
                    tracing::warn!("mint {m}: {e}");
                }
            }
        };
        let ((), (), backlog) = tokio::join!(announce, open_mints, catch_up(&shared, since));
        let blob_base = shared.blob_base.clone();
        let task = tokio::spawn(async move {
            let _server = server;
            let mut shutdown = shared.shutdown.clone();
            let mut stopping = false;
            let mut ad_tick =
                tokio::time::interval(Duration::from_secs(shared.cfg.advertise_every.max(1)));
            let mut jobs = tokio::task::JoinSet::new();
            for (ev, arrival) in backlog {
                let s = shared.clone();
                jobs.spawn(async move { take_job(s, ev, arrival).await });
            }
            while !stopping {
                tokio::select! {
                    _ = shutdown.changed() => stopping = true,
                    _ = ad_tick.tick() => {
                        let depth = shared.queued.lock().map(|q| q.len()).unwrap_or(0);
                        shared.publish(advertisement(&shared.cfg, &shared.keys.public_key(), depth)).await;
                    }
                    n = rx.recv() => match n {
                        Ok(RelayPoolNotification::Event { event, .. }) => {
                            let ev = (*event).clone();
                            if is_cancel(&ev) {
                                handle_cancel(&shared, &ev);
                            } else if ev.kind == Kind::Custom(KIND_JOB_REQUEST) {
                                let fresh = shared.seen.lock().map(|mut s| s.insert(ev.id)).unwrap_or(false);
                                if fresh {
                                    let s = shared.clone();
                                    jobs.spawn(async move { take_job(s, ev, Arrival::New).await });
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => stopping = true,
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

/// How long the catch-up queries may take, per query.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// Jobs addressed to this worker published in the `catch_up` window before
/// `now` that are still open: no result and no terminal status from this
/// worker. Jobs their author deleted (NIP-09) meanwhile get `cancelled`
/// (nothing was taken); jobs with a non-terminal status from this worker
/// were interrupted by a crash and come back as [`Arrival::Interrupted`].
async fn catch_up(shared: &Shared, now: Timestamp) -> Vec<(Event, Arrival)> {
    let window = shared.cfg.catch_up;
    if window == 0 {
        return Vec::new();
    }
    let me = shared.keys.public_key();
    let since = Timestamp::from(now.as_secs().saturating_sub(window));
    let mut jobs = crate::relays::fetch(
        &shared.client,
        &shared.relays,
        vec![Filter::new()
            .kind(Kind::Custom(KIND_JOB_REQUEST))
            .pubkey(me)
            .since(since)
            .until(now)],
        CATCH_UP_TIMEOUT,
    )
    .await;
    jobs.retain(|j| j.verify().is_ok());
    if jobs.is_empty() {
        return Vec::new();
    }
    let mut terminal: HashSet<EventId> = HashSet::new();
    let mut taken: HashSet<EventId> = HashSet::new();
    let mut deleted: HashSet<EventId> = HashSet::new();
    let ids: Vec<EventId> = jobs.iter().map(|j| j.id).collect();
    let authors: HashMap<EventId, PublicKey> = jobs.iter().map(|j| (j.id, j.pubkey)).collect();
    for chunk in ids.chunks(100) {
        let mine = crate::relays::fetch(
            &shared.client,
            &shared.relays,
            vec![
                Filter::new()
                    .kinds([Kind::Custom(KIND_JOB_STATUS), Kind::Custom(KIND_JOB_RESULT)])
                    .author(me)
                    .events(chunk.iter().copied()),
                Filter::new()
                    .kinds([
                        Kind::EventDeletion,
                        Kind::Custom(crate::protocol::KIND_JOB_CANCEL),
                    ])
                    .events(chunk.iter().copied()),
            ],
            CATCH_UP_TIMEOUT,
        )
        .await;
        for ev in mine {
            let refs: Vec<EventId> = ev.tags.event_ids().copied().collect();
            for id in refs {
                if is_cancel(&ev) {
                    if authors.get(&id) == Some(&ev.pubkey) {
                        deleted.insert(id);
                    }
                } else if ev.pubkey != me {
                    // not ours
                } else if ev.kind == Kind::Custom(KIND_JOB_RESULT) {
                    terminal.insert(id);
                } else {
                    let st = ev
                        .tags
                        .iter()
                        .find(|t| t.as_slice().first().map(String::as_str) == Some("status"))
                        .and_then(|t| t.as_slice().get(1).cloned())
                        .unwrap_or_default();
                    if crate::protocol::JobState::parse(&st).is_terminal() {
                        terminal.insert(id);
                    } else {
                        taken.insert(id);
                    }
                }
            }
        }
    }
    jobs.sort_by_key(|j| j.created_at);
    let mut out = Vec::new();
    for job in jobs {
        let fresh = shared
            .seen
            .lock()
            .map(|mut s| s.insert(job.id))
            .unwrap_or(false);
        if !fresh || terminal.contains(&job.id) {
            continue;
        }
        if deleted.contains(&job.id) && !taken.contains(&job.id) {
            shared
                .publish(status(
                    &job,
                    "cancelled",
                    "cancelled before it started: nothing was taken",
                ))
                .await;
            continue;
        }
        let arrival = if taken.contains(&job.id) {
            Arrival::Interrupted
        } else {
            Arrival::New
        };
        out.push((job, arrival));
    }
    if !out.is_empty() {
        tracing::info!("catching up on {} job(s) published while down", out.len());
    }
    out
}

/// A cancel: a NIP-09 deletion (kind 5) or a Loom cancel (kind 5102).
fn is_cancel(ev: &Event) -> bool {
    ev.kind == Kind::EventDeletion || ev.kind == Kind::Custom(crate::protocol::KIND_JOB_CANCEL)
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

/// How a job reached the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Live, or caught up on start without any status from this worker.
    New,
    /// Caught up on start with a non-terminal status from this worker: an
    /// earlier run took its payment and was killed before the result.
    Interrupted,
}

async fn take_job(shared: Arc<Shared>, job: Event, arrival: Arrival) {
    let Some(req) = JobRequest::from_event(&job) else {
        return;
    };
    if req.worker != shared.keys.public_key() {
        return; // addressed to us by `p` but meant for another worker
    }
    let paid_how = match validate(&shared.cfg, &req, &job.pubkey) {
        Ok(t) => t,
        Err(reason) => {
            if reason == NOT_WHITELISTED {
                // No money involved: a result with the reason, as
                // today's clients read it.
                shared
                    .publish(result(
                        &job,
                        &Outcome {
                            exit_code: -1,
                            error: Some(reason.clone()),
                            ..Default::default()
                        },
                    ))
                    .await;
            }
            shared.publish(status(&job, "failed", &reason)).await;
            return;
        }
    };
    let free = matches!(paid_how, Paid::Free);
    let token = match paid_how {
        Paid::Token(t) => Some(t),
        Paid::Unpaid | Paid::Free => None,
    };
    // Take the payment before anything runs; a locked one needs our key.
    let mut paid = 0u64;
    let mut mint = String::new();
    if let Some(t) = &token {
        mint = t.info().mint.clone();
        match shared.take_payment(t).await {
            Ok(a) => paid = a,
            Err(e) if arrival == Arrival::Interrupted && e.contains("already spent") => {
                // Our own earlier run redeemed it: the sats are in our wallet.
                let fee = shared.redeem_fee(&mint, t.info().proofs).await;
                paid = t.info().amount.saturating_sub(fee);
                tracing::info!(job = %job.id, "resuming an interrupted job paid {paid} sat earlier");
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
        let c = shared.change(&mint, paid).await;
        let state = if cancelled { "cancelled" } else { "failed" };
        let msg = refund_message(why, &c);
        shared
            .publish(result(
                &job,
                &Outcome {
                    exit_code: -1,
                    change: c.token,
                    note: c.note,
                    ..Default::default()
                },
            ))
            .await;
        shared.publish(status(&job, state, &msg)).await;
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
    let paid_secs = if token.is_none() {
        // Unpaid: a freelisted key gets up to freelist_timeout.
        if free {
            shared.cfg.freelist_timeout
        } else {
            shared.cfg.max_duration
        }
    } else {
        paid.checked_div(price).unwrap_or(shared.cfg.max_duration)
    };
    let limit = Duration::from_secs(paid_secs.min(shared.cfg.max_duration).max(1));
    let mut o = run_job(&shared, &job, &req, limit).await;
    let billed = ((o.duration.ceil() as u64).max(shared.cfg.min_duration) * price).min(paid);
    let c = shared.change(&mint, paid - billed).await;
    if paid > 0 {
        tracing::info!(
            job = %job.id,
            "paid {paid} sat, billed {billed}, change {} (+{} mint fees), kept {}",
            c.amount,
            c.fees,
            paid - c.amount - c.fees
        );
    }
    o.change = c.token;
    o.note = c.note;
    // The result first: a client may stop listening at the terminal status.
    let state = if o.exit_code == 0 {
        "success"
    } else {
        "failed"
    };
    let mut msg = format!("exit {} in {:.1}s", o.exit_code, o.duration);
    if o.change.is_some() {
        msg.push_str(&format!("; change {} sat", c.amount));
    } else if let Some(n) = &o.note {
        msg.push_str(&format!("; {n}"));
    }
    shared.publish(result(&job, &o)).await;
    shared.publish(status(&job, state, &msg)).await;
}

fn refund_message(why: &str, c: &Change) -> String {
    match (&c.token, &c.note) {
        (Some(_), _) if c.fees > 0 => format!(
            "{why}: refund of {} sat (the mint's fees took {})",
            c.amount, c.fees
        ),
        (Some(_), _) => format!("{why}: full refund"),
        (None, Some(n)) => format!("{why}; {n}"),
        (None, None) => why.to_string(),
    }
}

async fn run_job(shared: &Shared, job: &Event, req: &JobRequest, limit: Duration) -> Outcome {
    let mut cmd = tokio::process::Command::new(&req.cmd);
    cmd.args(&req.args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(if req.content.is_empty() {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::piped()
        })
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
    let mut child = match cmd.spawn() {
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
    // The request's content is the command's stdin (swarmstr's
    // convention), written while the output is read, then closed.
    if let Some(mut stdin) = child.stdin.take() {
        let input = req.content.clone().into_bytes();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        });
    }
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
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds_mint_calls_and_catches_up_by_default() {
        let d = WorkerConfig::default();
        assert_eq!(d.mint_timeout, 30);
        assert_eq!(d.catch_up, 24 * 3600);
        let p = std::path::Path::new("w.toml");
        let c = WorkerConfig::from_toml(
            p,
            "mints = [\"http://m\"]\ncatch_up = 0\nmint_timeout = 5\n",
        )
        .expect("valid");
        assert_eq!((c.catch_up, c.mint_timeout), (0, 5));
        let e = WorkerConfig::from_toml(p, "mints = [\"http://m\"]\nmint_timeout = 0\n")
            .expect_err("zero timeout");
        assert!(e.to_string().contains("mint_timeout"), "{e}");
    }

    #[test]
    fn refund_messages_name_the_fees_or_the_reason() {
        let c = Change {
            token: Some("t".into()),
            amount: 7,
            fees: 2,
            note: None,
        };
        assert_eq!(
            refund_message("cancelled", &c),
            "cancelled: refund of 7 sat (the mint's fees took 2)"
        );
        let c = no_change(9, "mint m did not answer within 30s");
        assert_eq!(
            refund_message("cancelled", &c),
            "cancelled; no change for the 9 sat owed: mint m did not answer within 30s"
        );
    }
}
