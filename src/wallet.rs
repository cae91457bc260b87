//! The local Cashu wallet (cdk): a cdk-sqlite store and a BIP-39 seed under
//! the XDG data dir (both 0600), balances per mint, receiving and sending
//! tokens (plain, or NUT-11 locked to a worker with a refund path for the
//! user), minting over Lightning, paying invoices, and NUT-07 checks of
//! tokens the wallet does not own.
//!
//! Money safety: every operation that can move money holds the wallet's
//! lock file (`<dir>/lock`, released by the kernel when a process dies),
//! so no two jobctl processes spend from one wallet at once. Whoever takes
//! the lock next knows every interrupted operation it finds is dead, and
//! recovers it before spending ([`LocalWallet::reconcile`]): cdk's saga
//! recovery, a NUT-09 look-up of swaps cut off mid-flight, a NUT-07 check
//! of every proof not known spent, and taking back tokens made for a job
//! or a `wallet send` that were never journaled or handed out.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cdk::amount::SplitTarget;
use cdk::mint_url::MintUrl;
use cdk::nuts::nut00::ProofsMethods;
use cdk::nuts::{
    CheckStateRequest, Conditions, CurrencyUnit, KeySetInfo, PaymentMethod, RestoreRequest,
    SpendingConditions, State, Token,
};
use cdk::wallet::types::{
    KeysetLoadPolicy, OperationData, SendSagaState, SwapSagaState, TransactionDirection,
    TransactionStatus, WalletSagaState,
};
use cdk::wallet::{ReceiveOptions, SendOptions, Wallet, WalletRepository, WalletRepositoryBuilder};
use cdk::Amount;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::keys::FileLock;
use crate::payment::PaymentToken;

use crate::settings::env::WALLET_DIR as ENV_WALLET_DIR;

/// How long a wallet operation waits for another jobctl process that is
/// using the same wallet.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Bound on recovering interrupted operations before a spend.
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The wallet's lock file.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("lock")
}

/// Take the wallet's lock (blocking, up to `wait`); hold it across
/// "pay -> sign -> journal" so no other process can see (and take back)
/// a token that is about to be journaled. Re-entrant in one process.
pub fn lock(dir: &Path, wait: Duration) -> Result<FileLock> {
    crate::keys::create_private_dir(dir)?;
    crate::keys::refuse_open("wallet directory", dir)?;
    FileLock::acquire(&lock_path(dir), wait)
}

/// The default wallet directory: `$XDG_DATA_HOME/jobctl/wallet`.
pub fn default_dir() -> PathBuf {
    crate::config::data_dir().join("wallet")
}

/// `flag` beats `JOBCTL_WALLET_DIR` beats the default.
pub fn resolve_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(ENV_WALLET_DIR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(default_dir)
}

fn werr(msg: impl std::fmt::Display) -> Error {
    Error::Wallet(msg.to_string())
}

/// Translate cdk errors into one line, naming "already spent" plainly.
fn cdk_err(what: &str, e: impl std::fmt::Display) -> Error {
    let s = e.to_string();
    let lower = s.to_ascii_lowercase();
    if lower.contains("already spent") || lower.contains("token already spent") {
        Error::Wallet(format!("{what}: the token is already spent"))
    } else if lower.contains("http transport error") || lower.contains("connection refused") {
        let why = s.rsplit(": ").next().unwrap_or(&s).to_string();
        Error::Wallet(format!("{what}: cannot reach the mint ({why})"))
    } else if lower.contains("pending") && lower.contains("proof") {
        Error::Wallet(format!(
            "{what}: the token's proofs are pending at the mint"
        ))
    } else {
        Error::Wallet(format!("{what}: {s}"))
    }
}

/// A NUT-11 lock: spendable by `worker`, refundable by `refund` after `locktime`.
#[derive(Debug, Clone, Copy)]
pub struct Lock {
    /// The worker's nostr key (x-only, used with a `02` prefix).
    pub worker: nostr_sdk::PublicKey,
    /// The user's nostr key, the refund path.
    pub refund: nostr_sdk::PublicKey,
    /// Unix time after which the refund key can spend.
    pub locktime: u64,
}

/// A nostr x-only pubkey as a Cashu (compressed) pubkey: prefix `02`;
/// BIP-340 signatures make the parity irrelevant.
pub fn cashu_pubkey(pk: &nostr_sdk::PublicKey) -> Result<cdk::nuts::PublicKey> {
    cdk::nuts::PublicKey::from_hex(format!("02{}", pk.to_hex())).map_err(werr)
}

/// A nostr secret key as a Cashu secret key (for P2PK signatures).
pub fn cashu_secret(sk: &nostr_sdk::SecretKey) -> Result<cdk::nuts::SecretKey> {
    cdk::nuts::SecretKey::from_slice(sk.as_secret_bytes()).map_err(werr)
}

/// One balance line.
#[derive(Debug, Clone, Serialize)]
pub struct Balance {
    /// Mint URL.
    pub mint: String,
    /// Unit.
    pub unit: String,
    /// Spendable.
    pub amount: u64,
    /// Sent in tokens not yet redeemed by anyone (e.g. a job's payment).
    pub pending: u64,
    /// Held: proofs the mint reports pending (a swap cut off mid-way),
    /// kept out of spending until the mint settles them (`wallet check`).
    pub held: u64,
}

/// A token the wallet made.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The token (money).
    pub token: String,
    /// The wallet's operation id (the journal's `sends.op_id`).
    pub op_id: String,
    /// Fees the mint charged or will charge for it.
    pub fee: u64,
}

/// What [`LocalWallet::reconcile`] found and fixed at one mint.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciled {
    /// Mint URL.
    pub mint: String,
    /// Interrupted operations completed (cdk saga recovery).
    pub recovered: usize,
    /// Interrupted operations rolled back.
    pub rolled_back: usize,
    /// Swaps cut off before the mint signed anything, dropped.
    pub stale_swaps_dropped: usize,
    /// Interrupted operations left for a later try (mint unreachable...).
    pub left_pending: usize,
    /// Value of proofs the wallet listed as unspent/reserved that the mint
    /// says are spent (no longer counted).
    pub marked_spent: u64,
    /// Value of reserved proofs of dead operations, unspent at the mint:
    /// spendable again.
    pub released: u64,
    /// Tokens made but never journaled or handed out, taken back.
    pub reclaimed_sends: usize,
    /// Their value back in the wallet.
    pub reclaimed_amount: u64,
    /// Value in proofs locked to someone else that no token in flight holds.
    pub locked_orphans: u64,
    /// Value of proofs the wallet would have spent that the mint holds
    /// pending (a swap cut off mid-way): held out of spending until the
    /// mint settles them; a later check releases or drops them.
    pub held_at_mint: u64,
    /// Problems met (each one line).
    pub problems: Vec<String>,
}

impl Reconciled {
    /// Whether anything was changed.
    pub fn changed(&self) -> bool {
        self.recovered + self.rolled_back + self.stale_swaps_dropped + self.reclaimed_sends > 0
            || self.marked_spent > 0
            || self.released > 0
            || self.held_at_mint > 0
    }
}

/// The result of swapping a bearer token into one locked to a worker.
#[derive(Debug, Clone)]
pub struct Relocked {
    /// The locked token.
    pub sent: Sent,
    /// Value of the token given.
    pub given: u64,
    /// What the swap into the wallet credited (given minus input fees).
    pub received: u64,
    /// Value locked to the worker.
    pub locked: u64,
}

/// The opened wallet.
pub struct LocalWallet {
    repo: WalletRepository,
    dir: PathBuf,
    /// Operations share it; recovery takes it alone, so it never runs
    /// while another task of this process is mid-operation.
    ops: tokio::sync::RwLock<()>,
    /// How tokens this wallet makes are written out.
    format: TokenFormat,
}

/// How a token jobctl makes is written: `cashuA` (V3, JSON, proofs with
/// full keyset ids) or `cashuB` (V4, CBOR, short keyset ids). Today's
/// clients (cashu-ts 3.6 in Budabit) cannot decode offline a `cashuB`
/// token whose proofs carry short ids of version-01 keysets, so V3 is the
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenFormat {
    /// `cashuA...` with full keyset ids.
    #[default]
    V3,
    /// `cashuB...` as cdk writes it.
    V4,
}

impl std::str::FromStr for TokenFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cashua" | "a" | "v3" => Ok(TokenFormat::V3),
            "cashub" | "b" | "v4" => Ok(TokenFormat::V4),
            _ => Err(format!("`{s}` is not a token format (cashuA or cashuB)")),
        }
    }
}

/// A mint's keysets as the infos token decoding and fee sums take.
fn keyset_infos(keysets: Vec<cdk::nuts::KeySet>) -> Vec<KeySetInfo> {
    keysets
        .into_iter()
        .map(|ks| KeySetInfo {
            id: ks.id,
            unit: ks.unit,
            active: ks.active.unwrap_or(false),
            input_fee_ppk: ks.input_fee_ppk,
            final_expiry: ks.final_expiry,
        })
        .collect()
}

/// Write `token` in `format`. For V3 every proof carries its keyset's
/// full id, looked up in the keysets the wallet holds for `w`'s mint (it
/// just used them, so this is local; bounded by [`KEYSET_LOOKUP`] all the
/// same). If they cannot be had, the token stays V4, which every reader
/// decodes with the mint's help: the token is money and is never dropped.
pub async fn encode_token(w: &Wallet, token: &Token, format: TokenFormat) -> String {
    if format == TokenFormat::V4 {
        return token.to_string();
    }
    let looked_up =
        tokio::time::timeout(KEYSET_LOOKUP, w.keysets(KeysetLoadPolicy::CacheThenNetwork)).await;
    let infos: Vec<KeySetInfo> = match looked_up {
        Ok(Ok(k)) => keyset_infos(k),
        _ => Vec::new(),
    };
    full_id_v3(token, &infos).unwrap_or_else(|| {
        tracing::warn!("keysets of the token's mint unknown: token left as cashuB");
        token.to_string()
    })
}

/// Bound on looking up keysets to write a V3 token.
const KEYSET_LOOKUP: Duration = Duration::from_secs(5);

/// `token` as V3 with full keyset ids, given the mint's keysets.
pub fn full_id_v3(token: &Token, keysets: &[KeySetInfo]) -> Option<String> {
    use cdk::nuts::nut00::token::TokenV3Token;
    use cdk::nuts::nut00::{ProofV3, TokenV3};
    use cdk::nuts::nut02::ShortKeysetId;
    let mint = token.mint_url().ok()?;
    let proofs = token.proofs(keysets).ok()?;
    if proofs.is_empty() {
        return None;
    }
    let mut v3 = Vec::with_capacity(proofs.len());
    for p in proofs {
        let id = ShortKeysetId::from_bytes(&p.keyset_id.to_bytes()).ok()?;
        v3.push(ProofV3 {
            amount: p.amount,
            keyset_id: id,
            secret: p.secret,
            c: p.c,
            witness: p.witness,
            dleq: p.dleq,
        });
    }
    let t = TokenV3 {
        token: vec![TokenV3Token { mint, proofs: v3 }],
        memo: token.memo().clone(),
        unit: token.unit(),
    };
    Some(t.to_string())
}

/// Holds the wallet for one operation: the cross-process lock file and
/// this process's share of `ops`.
struct OpGuard<'a> {
    _file: FileLock,
    _ops: tokio::sync::RwLockReadGuard<'a, ()>,
}

fn is_locked_proof(p: &cdk::nuts::Proof) -> bool {
    cdk::nuts::nut10::Secret::try_from(p.secret.clone()).is_ok()
}

fn create_private_file(path: &Path) -> Result<()> {
    crate::keys::create_private_file(path)
        .map_err(|e| werr(format!("cannot create {}: {e}", path.display())))
}

fn load_seed(dir: &Path) -> Result<[u8; 64]> {
    let path = dir.join("seed");
    if !path.exists() {
        let m = bip39::Mnemonic::generate(12).map_err(werr)?;
        // Write it whole under a temporary name, then link it into place:
        // a reader never sees a half-written seed, and concurrent first
        // runs agree on one seed.
        let tmp = dir.join(format!("seed.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        create_private_file(&tmp)?;
        std::fs::write(&tmp, format!("{m}\n"))
            .map_err(|e| werr(format!("cannot write {}: {e}", tmp.display())))?;
        if std::fs::hard_link(&tmp, &path).is_err() && !path.exists() {
            let _ = std::fs::remove_file(&tmp);
            return Err(werr(format!("cannot create {}", path.display())));
        }
        let _ = std::fs::remove_file(&tmp);
    }
    crate::keys::refuse_open("wallet seed", &path)?;
    let words = std::fs::read_to_string(&path)
        .map_err(|e| werr(format!("cannot read {}: {e}", path.display())))?;
    let m = bip39::Mnemonic::from_str(words.trim()).map_err(|e| {
        werr(format!(
            "seed {} is not a BIP-39 mnemonic: {e}",
            path.display()
        ))
    })?;
    Ok(m.to_seed_normalized(""))
}

impl LocalWallet {
    /// Open (creating on first use) the wallet in `dir`. A directory, seed
    /// or store that group or others can read is refused (exit 2).
    pub async fn open(dir: &Path) -> Result<LocalWallet> {
        crate::keys::create_private_dir(dir)?;
        crate::keys::refuse_open("wallet directory", dir)?;
        // First runs in parallel create the seed and the store's schema
        // once: one at a time.
        let creating = FileLock::acquire_async(&lock_path(dir), LOCK_WAIT).await?;
        let seed = load_seed(dir)?;
        let db_path = dir.join("wallet.sqlite");
        create_private_file(&db_path)?;
        crate::keys::refuse_open("wallet store", &db_path)?;
        let store = cdk_sqlite::WalletSqliteDatabase::new(db_path.clone())
            .await
            .map_err(|e| werr(format!("cannot open {}: {e}", db_path.display())))?;
        let repo = WalletRepositoryBuilder::new()
            .localstore(Arc::new(store))
            .seed(seed)
            .with_rate_limiting_disabled()
            .build()
            .await
            .map_err(|e| werr(format!("cannot open {}: {e}", db_path.display())))?;
        drop(creating);
        Ok(LocalWallet {
            repo,
            dir: dir.to_path_buf(),
            ops: tokio::sync::RwLock::new(()),
            // cdk's own form for `wallet send`; job payments choose theirs
            // (V3 by default) with [`LocalWallet::set_token_format`].
            format: TokenFormat::V4,
        })
    }

    /// How tokens this wallet makes are written from now on.
    pub fn set_token_format(&mut self, format: TokenFormat) {
        self.format = format;
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The wallet for `mint` in sat, created if new. No recovery here:
    /// that needs the lock (see [`LocalWallet::reconcile`]).
    pub async fn wallet(&self, mint: &str) -> Result<Wallet> {
        let url = MintUrl::from_str(mint)
            .map_err(|e| Error::input(format!("`{mint}` is not a mint URL: {e}")))?;
        self.repo
            .get_or_create_wallet(url, CurrencyUnit::Sat, None)
            .await
            .map_err(|e| cdk_err(&format!("mint {mint}"), e))
    }

    /// Take the wallet for one money-moving operation at `mint`: the lock
    /// file (waiting for other processes), then, if a dead operation left
    /// traces, recover it first (bounded by [`RECOVERY_TIMEOUT`]).
    async fn guard(&self, mint: &str, journal: Option<&mut Journal>) -> Result<OpGuard<'_>> {
        crate::keys::create_private_dir(&self.dir)?;
        let file = FileLock::acquire_async(&lock_path(&self.dir), LOCK_WAIT).await?;
        {
            let _alone = self.ops.write().await;
            let mut journal = journal;
            let unfinished = match journal.as_deref_mut() {
                Some(j) => unfinished_sends(j, mint)?,
                None => false,
            };
            match self.needs_recovery(mint, unfinished).await {
                Ok(false) => {}
                Ok(true) | Err(_) => {
                    match self.reconcile_locked(mint, journal, RECOVERY_TIMEOUT).await {
                        Ok(r) => {
                            if r.changed() {
                                tracing::info!(?r, "recovered interrupted wallet operations");
                            }
                            for p in &r.problems {
                                tracing::warn!("wallet recovery at {mint}: {p}");
                            }
                        }
                        Err(e) => tracing::warn!(
                            "wallet recovery at {mint}: {e}; `jobctl wallet check` retries"
                        ),
                    }
                }
            }
        }
        Ok(OpGuard {
            _file: file,
            _ops: self.ops.read().await,
        })
    }

    /// Whether a dead operation left traces at `mint` (local look-ups only).
    async fn needs_recovery(&self, mint: &str, unfinished_sends: bool) -> Result<bool> {
        if unfinished_sends {
            return Ok(true);
        }
        let w = self.wallet(mint).await?;
        let sagas = w.localstore.get_incomplete_sagas().await.map_err(werr)?;
        if sagas.iter().any(|s| {
            s.mint_url == w.mint_url
                && !matches!(s.state, WalletSagaState::Send(SendSagaState::TokenCreated))
        }) {
            return Ok(true);
        }
        let held = w
            .localstore
            .get_proofs(
                Some(w.mint_url.clone()),
                Some(w.unit.clone()),
                Some(vec![State::Reserved, State::Pending]),
                None,
            )
            .await
            .map_err(werr)?;
        Ok(!held.is_empty())
    }

    /// Bring the wallet at `mint` in line with the mint, under the lock:
    /// recover interrupted operations (cdk sagas; swaps cut off before the
    /// mint signed anything are dropped after a NUT-09 look-up), check every
    /// proof not known spent (NUT-07: spent ones are marked spent, reserved
    /// ones of dead operations released), and take back tokens made for a
    /// job or `wallet send` that `journal` shows were never journaled or
    /// handed out. Bounded by `timeout`.
    pub async fn reconcile(
        &self,
        mint: &str,
        journal: Option<&mut Journal>,
        timeout: Duration,
    ) -> Result<Reconciled> {
        let _file = FileLock::acquire_async(&lock_path(&self.dir), LOCK_WAIT).await?;
        let _alone = self.ops.write().await;
        self.reconcile_locked(mint, journal, timeout).await
    }

    async fn reconcile_locked(
        &self,
        mint: &str,
        journal: Option<&mut Journal>,
        timeout: Duration,
    ) -> Result<Reconciled> {
        let mut out = Reconciled {
            mint: mint.to_string(),
            ..Default::default()
        };
        let work = self.reconcile_inner(mint, journal, &mut out);
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => {
                out.problems.push(e.to_string());
                Ok(out)
            }
            Err(_) => {
                out.problems.push(format!(
                    "mint {mint} did not answer within {}s; the rest is left for later",
                    timeout.as_secs()
                ));
                Ok(out)
            }
        }
    }

    async fn reconcile_inner(
        &self,
        mint: &str,
        journal: Option<&mut Journal>,
        out: &mut Reconciled,
    ) -> Result<()> {
        let w = self.wallet(mint).await?;
        let store = w.localstore.clone();
        let connector = w.mint_connector();
        let mine = |s: &cdk::wallet::types::WalletSaga| s.mint_url == w.mint_url;

        // 0. The tokens of sends in flight, before cdk's recovery runs: it
        // drops a send whose proofs all came from a swap (their proofs are
        // not tied to the operation), and with it the token.
        let mut saga_tokens: HashMap<String, String> = HashMap::new();
        for s in store.get_incomplete_sagas().await.map_err(werr)? {
            if let (true, OperationData::Send(d)) = (mine(&s), &s.data) {
                if let Some(t) = &d.token {
                    saga_tokens.insert(s.id.to_string(), t.clone());
                }
            }
        }

        // 1. cdk's own saga recovery. It also checks every token still in
        // flight (sent, not yet redeemed): only interrupted operations are
        // counted.
        let interrupted = |sagas: &[cdk::wallet::types::WalletSaga]| {
            sagas
                .iter()
                .filter(|s| {
                    mine(s) && s.state != WalletSagaState::Send(SendSagaState::TokenCreated)
                })
                .count()
        };
        let before = interrupted(&store.get_incomplete_sagas().await.map_err(werr)?);
        match w.recover_incomplete_sagas().await {
            Ok(r) => {
                let after = interrupted(&store.get_incomplete_sagas().await.map_err(werr)?);
                out.rolled_back += r.compensated;
                out.recovered += before.saturating_sub(after).saturating_sub(r.compensated);
                out.left_pending += after;
            }
            Err(e) => out.problems.push(format!("saga recovery: {e}")),
        }

        // 2. Swaps still open: cut off before the mint signed their outputs
        // (NUT-09 knows none of them) are dropped; their inputs are checked
        // in step 3. Ones the mint did sign were restored by step 1.
        let sagas: Vec<_> = store
            .get_incomplete_sagas()
            .await
            .map_err(werr)?
            .into_iter()
            .filter(mine)
            .collect();
        for s in &sagas {
            if s.state != WalletSagaState::Swap(SwapSagaState::SwapRequested) {
                continue;
            }
            let OperationData::Swap(d) = &s.data else {
                continue;
            };
            let outputs = d.blinded_messages.clone().unwrap_or_default();
            let signed = if outputs.is_empty() {
                0
            } else {
                match connector.post_restore(RestoreRequest { outputs }).await {
                    Ok(r) => r.signatures.len(),
                    Err(e) => {
                        out.problems
                            .push(format!("restore look-up for swap {}: {e}", s.id));
                        continue;
                    }
                }
            };
            if signed == 0 {
                store.release_proofs(&s.id).await.map_err(werr)?;
                store.delete_saga(&s.id).await.map_err(werr)?;
                out.stale_swaps_dropped += 1;
                out.left_pending = out.left_pending.saturating_sub(1);
            }
        }

        // 3. NUT-07: every proof not known spent.
        let sagas: Vec<_> = store
            .get_incomplete_sagas()
            .await
            .map_err(werr)?
            .into_iter()
            .filter(mine)
            .collect();
        let live: HashSet<uuid::Uuid> = sagas.iter().map(|s| s.id).collect();
        let mut in_flight: HashSet<cdk::nuts::PublicKey> = HashSet::new();
        for s in &sagas {
            if let OperationData::Send(d) = &s.data {
                for p in d.proofs.iter().flatten() {
                    if let Ok(y) = p.y() {
                        in_flight.insert(y);
                    }
                }
            }
        }
        // Which outgoing transaction (if any) each proof went out in.
        let mut sent_in: HashMap<cdk::nuts::PublicKey, TransactionStatus> = HashMap::new();
        let mut tx_ys: HashMap<uuid::Uuid, Vec<cdk::nuts::PublicKey>> = HashMap::new();
        for t in w
            .list_transactions(Some(TransactionDirection::Outgoing))
            .await
            .map_err(werr)?
        {
            for y in &t.ys {
                sent_in.insert(*y, t.status);
            }
            if let Some(op) = t.saga_id {
                tx_ys.insert(op, t.ys.clone());
            }
        }
        let proofs = store
            .get_proofs(
                Some(w.mint_url.clone()),
                Some(w.unit.clone()),
                Some(vec![
                    State::Unspent,
                    State::Reserved,
                    State::Pending,
                    State::PendingSpent,
                ]),
                None,
            )
            .await
            .map_err(werr)?;
        let mut at_mint = HashMap::new();
        for chunk in proofs.chunks(200) {
            let ys = chunk.iter().map(|p| p.y).collect();
            let resp = connector
                .post_check_state(CheckStateRequest { ys })
                .await
                .map_err(|e| cdk_err("proof state check", e))?;
            for st in resp.states {
                at_mint.insert(st.y, st.state);
            }
        }
        let mut to_spent = Vec::new();
        let mut to_release = Vec::new();
        let mut to_hold = Vec::new();
        for p in &proofs {
            let amount: u64 = p.proof.amount.into();
            let orphan = !in_flight.contains(&p.y)
                && p.used_by_operation.is_none_or(|op| !live.contains(&op));
            match at_mint.get(&p.y) {
                Some(State::Spent) => {
                    to_spent.push(p.y);
                    if p.state != State::PendingSpent {
                        out.marked_spent += amount;
                    }
                }
                Some(State::Unspent)
                    if orphan && matches!(p.state, State::Reserved | State::Pending) =>
                {
                    if is_locked_proof(&p.proof) {
                        out.locked_orphans += amount;
                    } else {
                        to_release.push(p.y);
                        out.released += amount;
                    }
                }
                // Pending at the mint (an interrupted swap it has not
                // settled), yet spendable or reserved by a dead operation
                // here (cdk's rollback marks a cut-off swap's inputs
                // unspent): spending them would make a token no one can
                // redeem. Hold them until the mint settles them.
                Some(State::Pending)
                    if p.state == State::Unspent || (orphan && p.state == State::Reserved) =>
                {
                    to_hold.push(p.y);
                    out.held_at_mint += amount;
                }
                // Marked as sent, but never part of a token: cut off between
                // marking and recording the send, or rolled back.
                Some(State::Unspent)
                    if orphan
                        && p.state == State::PendingSpent
                        && sent_in
                            .get(&p.y)
                            .is_none_or(|s| *s == TransactionStatus::Failed)
                        && !is_locked_proof(&p.proof) =>
                {
                    to_release.push(p.y);
                    out.released += amount;
                }
                _ => {}
            }
        }
        if !to_spent.is_empty() {
            store
                .update_proofs_state(to_spent, State::Spent)
                .await
                .map_err(werr)?;
        }
        if !to_release.is_empty() {
            store
                .update_proofs_state(to_release, State::Unspent)
                .await
                .map_err(werr)?;
        }
        if !to_hold.is_empty() {
            store
                .update_proofs_state(to_hold, State::Pending)
                .await
                .map_err(werr)?;
        }

        // 4. Tokens made but never journaled nor handed out: take them back.
        let Some(j) = journal else {
            return Ok(());
        };
        let pending: HashSet<String> = w
            .get_pending_sends()
            .await
            .map_err(werr)?
            .into_iter()
            .map(|u| u.to_string())
            .collect();
        let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        for rec in j.sends()? {
            if norm(&rec.mint) != norm(mint)
                || !matches!(rec.state.as_str(), "prepared" | "created")
            {
                continue;
            }
            let token = rec
                .token
                .clone()
                .or_else(|| saga_tokens.get(&rec.op_id).cloned());
            if let Some(t) = &token {
                if j.token_in_jobs(t)? {
                    j.send_state(&rec.op_id, "journaled", "found in a journaled job")?;
                    continue;
                }
            }
            let op = parse_op(&rec.op_id)?;
            if pending.contains(&rec.op_id) {
                match w.revoke_send(op).await {
                    Ok(a) => {
                        let a: u64 = a.into();
                        out.reclaimed_sends += 1;
                        out.reclaimed_amount += a;
                        j.send_state(
                            &rec.op_id,
                            "reclaimed",
                            &format!("never journaled: {a} sat taken back into the wallet"),
                        )?;
                    }
                    Err(e) => out
                        .problems
                        .push(cdk_err("taking back an unjournaled token", e).to_string()),
                }
                continue;
            }
            // The send's record is gone from the wallet: find its proofs
            // by the token, else by its transaction, and put back the ones
            // the mint says are unspent (the token never left this wallet).
            let ys: Vec<cdk::nuts::PublicKey> = match token.as_deref().map(Token::from_str) {
                Some(Ok(t)) => t
                    .token_secrets()
                    .into_iter()
                    .filter_map(|s| cdk::dhke::hash_to_curve(&s.to_bytes()).ok())
                    .collect(),
                _ => tx_ys.get(&op).cloned().unwrap_or_default(),
            };
            let held = if ys.is_empty() {
                Vec::new()
            } else {
                store.get_proofs_by_ys(ys).await.map_err(werr)?
            };
            let back: Vec<_> = held
                .iter()
                .filter(|p| {
                    matches!(
                        p.state,
                        State::PendingSpent | State::Reserved | State::Pending
                    ) && at_mint.get(&p.y) == Some(&State::Unspent)
                })
                .collect();
            if back.is_empty() {
                j.send_state(
                    &rec.op_id,
                    "abandoned",
                    "interrupted before a token was handed out; nothing left in flight",
                )?;
                continue;
            }
            if back.iter().any(|p| is_locked_proof(&p.proof)) {
                let a: u64 = back.iter().map(|p| u64::from(p.proof.amount)).sum();
                out.locked_orphans += a;
                out.problems.push(format!(
                    "a token of {a} sat locked to a worker was never journaled (send {})",
                    rec.op_id
                ));
                j.send_state(
                    &rec.op_id,
                    "stranded",
                    "locked to the worker, never journaled; refundable after the locktime",
                )?;
                continue;
            }
            let a: u64 = back.iter().map(|p| u64::from(p.proof.amount)).sum();
            store
                .update_proofs_state(back.iter().map(|p| p.y).collect(), State::Unspent)
                .await
                .map_err(werr)?;
            out.reclaimed_sends += 1;
            out.reclaimed_amount += a;
            j.send_state(
                &rec.op_id,
                "reclaimed",
                &format!("never journaled: {a} sat put back into the wallet"),
            )?;
        }
        Ok(())
    }

    /// Recover interrupted operations at every mint that shows traces of
    /// one (local look-ups first; the mint is asked only then), if the
    /// wallet's lock is free within a moment. For readers such as
    /// `wallet balance`, so they do not show proofs a dead operation spent.
    pub async fn recover_if_needed(
        &self,
        mut journal: Option<&mut Journal>,
        timeout: Duration,
    ) -> Result<Vec<Reconciled>> {
        let Ok(_file) =
            FileLock::acquire_async(&lock_path(&self.dir), Duration::from_millis(500)).await
        else {
            return Ok(Vec::new());
        };
        let _alone = self.ops.write().await;
        let mut out = Vec::new();
        for m in self.mints().await {
            let unfinished = match journal.as_deref_mut() {
                Some(j) => unfinished_sends(j, &m)?,
                None => false,
            };
            if self.needs_recovery(&m, unfinished).await.unwrap_or(true) {
                out.push(
                    self.reconcile_locked(&m, journal.as_deref_mut(), timeout)
                        .await?,
                );
            }
        }
        Ok(out)
    }

    /// [`LocalWallet::reconcile`] for every mint the wallet knows.
    pub async fn reconcile_all(
        &self,
        mut journal: Option<&mut Journal>,
        timeout: Duration,
    ) -> Result<Vec<Reconciled>> {
        let mut out = Vec::new();
        for m in self.mints().await {
            out.push(self.reconcile(&m, journal.as_deref_mut(), timeout).await?);
        }
        Ok(out)
    }

    /// Balances per mint and unit (no network).
    pub async fn balances(&self) -> Result<Vec<Balance>> {
        let mut out = Vec::new();
        for w in self.repo.get_wallets().await {
            let amount = w.total_balance().await.map_err(werr)?;
            let pending = w
                .get_pending_spent_proofs()
                .await
                .ok()
                .and_then(|p| p.total_amount().ok())
                .unwrap_or(Amount::ZERO);
            let held = w
                .get_pending_proofs()
                .await
                .ok()
                .and_then(|p| p.total_amount().ok())
                .unwrap_or(Amount::ZERO);
            out.push(Balance {
                mint: w.mint_url.to_string(),
                unit: w.unit.to_string(),
                amount: amount.into(),
                pending: pending.into(),
                held: held.into(),
            });
        }
        out.sort_by(|a, b| a.mint.cmp(&b.mint));
        Ok(out)
    }

    /// Spendable sat balance at one mint.
    pub async fn balance_at(&self, mint: &str) -> Result<u64> {
        let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        Ok(self
            .balances()
            .await?
            .into_iter()
            .filter(|b| norm(&b.mint) == norm(mint) && b.unit == "sat")
            .map(|b| b.amount)
            .sum())
    }

    /// Redeem a token into the wallet; `keys` sign locked proofs (the
    /// worker's key, or the refund key after the locktime).
    pub async fn receive(&self, token: &str, keys: Vec<cdk::nuts::SecretKey>) -> Result<u64> {
        let t = PaymentToken::parse_any_size(token)?;
        let _g = self.guard(&t.info().mint, None).await?;
        let w = self.wallet(&t.info().mint).await?;
        let amount = w
            .receive(
                token.trim(),
                ReceiveOptions {
                    p2pk_signing_keys: keys,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| cdk_err("receive", e))?;
        Ok(amount.into())
    }

    /// Make a token of `amount` sat from `mint`, optionally locked.
    pub async fn send(&self, mint: &str, amount: u64, lock: Option<Lock>) -> Result<String> {
        Ok(self.send_logged(mint, amount, lock, None, "").await?.token)
    }

    /// Make a token of `amount` sat from `mint`, optionally locked,
    /// recording it in `journal` (if given) as `purpose`: `prepared` before
    /// the mint is asked, `created` with the token right after. A token the
    /// caller then neither journals in a job nor marks `delivered` is taken
    /// back by the next recovery.
    pub async fn send_logged(
        &self,
        mint: &str,
        amount: u64,
        lock: Option<Lock>,
        mut journal: Option<&mut Journal>,
        purpose: &str,
    ) -> Result<Sent> {
        let _g = self.guard(mint, journal.as_deref_mut()).await?;
        let w = self.wallet(mint).await?;
        let have: u64 = w.total_balance().await.map_err(werr)?.into();
        if have < amount {
            return Err(Error::input(format!(
                "the wallet holds {have} sat at {mint}, less than {amount} sat"
            )));
        }
        let conditions = conditions(lock)?;
        let prepared = w
            .prepare_send(
                Amount::from(amount),
                SendOptions {
                    conditions,
                    include_fee: true,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| cdk_err("send", e))?;
        let op_id = prepared.operation_id().to_string();
        let fee: u64 = prepared.fee().into();
        if let Some(j) = journal.as_deref_mut() {
            if let Err(e) = j.send_prepared(&op_id, mint, amount, purpose) {
                let _ = prepared.cancel().await;
                return Err(e);
            }
        }
        let token = match prepared.confirm(None).await {
            Ok(t) => encode_token(&w, &t, self.format).await,
            Err(e) => {
                if let Some(j) = journal.as_deref_mut() {
                    let _ = j.send_state(&op_id, "failed", &e.to_string());
                }
                return Err(cdk_err("send", e));
            }
        };
        if let Some(j) = journal {
            if let Err(e) = j.send_created(&op_id, &token) {
                // Not recorded: take it back now rather than hand it out.
                if let Ok(op) = parse_op(&op_id) {
                    let _ = w.revoke_send(op).await;
                }
                return Err(e);
            }
        }
        Ok(Sent { token, op_id, fee })
    }

    /// Swap a bearer `token` into one locked to a worker, minding the
    /// mint's input fees: refused before anything is swapped when the fees
    /// would eat it all; otherwise the locked token holds what the swap
    /// credited minus the fee of the locked token itself. Every error after
    /// the swap says where the value is.
    pub async fn relock(
        &self,
        token: &PaymentToken,
        lock: Lock,
        mut journal: Option<&mut Journal>,
    ) -> Result<Relocked> {
        let mint = token.info().mint.clone();
        let given = token.info().amount;
        let _g = self.guard(&mint, journal.as_deref_mut()).await?;
        let w = self.wallet(&mint).await?;
        // Input fees of the token's own proofs (NUT-02), before swapping.
        let t = Token::from_str(token.expose()).map_err(werr)?;
        let infos = keyset_infos(
            w.keysets(KeysetLoadPolicy::CacheThenNetwork)
                .await
                .map_err(|e| cdk_err(&format!("mint {mint}"), e))?,
        );
        let max_ppk = infos
            .iter()
            .filter(|k| k.active)
            .map(|k| k.input_fee_ppk)
            .min()
            .unwrap_or(0);
        let proofs = t.proofs(&infos).map_err(|e| {
            Error::input(format!(
                "the token's proofs do not match the mint's keysets: {e}"
            ))
        })?;
        let fee_in: u64 = w
            .get_proofs_fee(&proofs)
            .await
            .map(|f| f.total.into())
            .unwrap_or(0);
        // The locked token needs at least one proof, whose fee is paid too.
        let min_out_fee = max_ppk.div_ceil(1000);
        if given <= fee_in + min_out_fee {
            return Err(Error::input(format!(
                "the token holds {given} sat and mint {mint} charges input fees ({fee_in} sat to swap it, \
                 at least {min_out_fee} sat for the locked token): nothing would be left to lock; \
                 nothing was swapped"
            )));
        }
        let received: u64 = w
            .receive(token.expose().trim(), ReceiveOptions::default())
            .await
            .map_err(|e| cdk_err("swapping the token into the wallet", e))?
            .into();
        let where_ = |what: String| {
            Error::Wallet(format!(
                "{what}; the token's value ({received} sat after fees) is in the wallet at {mint} \
                 (`jobctl wallet balance`)"
            ))
        };
        // The largest amount whose locked token, with its fees, fits in
        // what the swap credited.
        let mut amount = received.saturating_sub(min_out_fee);
        let conditions = conditions(Some(lock))?;
        for _ in 0..8 {
            if amount == 0 {
                break;
            }
            let prepared = match w
                .prepare_send(
                    Amount::from(amount),
                    SendOptions {
                        conditions: conditions.clone(),
                        include_fee: true,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(p) => p,
                Err(cdk::Error::InsufficientFunds) => {
                    amount -= 1;
                    continue;
                }
                Err(e) => return Err(where_(cdk_err("locking it to the worker", e).to_string())),
            };
            let fee: u64 = prepared.fee().into();
            if amount + fee > received {
                let _ = prepared.cancel().await;
                amount = received.saturating_sub(fee).min(amount - 1);
                continue;
            }
            let op_id = prepared.operation_id().to_string();
            if let Some(j) = journal.as_deref_mut() {
                if let Err(e) = j.send_prepared(&op_id, &mint, amount, "lock") {
                    let _ = prepared.cancel().await;
                    return Err(where_(e.to_string()));
                }
            }
            let locked = match prepared.confirm(None).await {
                Ok(t) => encode_token(&w, &t, self.format).await,
                Err(e) => {
                    if let Some(j) = journal.as_deref_mut() {
                        let _ = j.send_state(&op_id, "failed", &e.to_string());
                    }
                    return Err(where_(cdk_err("locking it to the worker", e).to_string()));
                }
            };
            if let Some(j) = journal {
                if let Err(e) = j.send_created(&op_id, &locked) {
                    if let Ok(op) = parse_op(&op_id) {
                        let _ = w.revoke_send(op).await;
                    }
                    return Err(where_(e.to_string()));
                }
            }
            return Ok(Relocked {
                sent: Sent {
                    token: locked,
                    op_id,
                    fee,
                },
                given,
                received,
                locked: amount,
            });
        }
        Err(where_(format!(
            "cannot lock any of it to the worker: the mint's fees take it all (swap fee {} sat)",
            given.saturating_sub(received)
        )))
    }

    /// Mint `amount` sat at `mint` over Lightning: `on_invoice` gets the
    /// bolt11 to pay; waits up to `wait` for payment, then claims proofs.
    pub async fn mint(
        &self,
        mint: &str,
        amount: u64,
        wait: Duration,
        on_invoice: impl FnOnce(&str),
    ) -> Result<u64> {
        // Waiting for the invoice (up to `wait`) holds no lock: other
        // wallet operations go on meanwhile. Claiming the proofs does.
        let w = self.wallet(mint).await?;
        let quote = w
            .mint_quote(
                PaymentMethod::BOLT11,
                Some(Amount::from(amount)),
                None,
                None,
            )
            .await
            .map_err(|e| cdk_err("mint quote", e))?;
        on_invoice(&quote.request);
        w.wait_for_payment(&quote, wait)
            .await
            .map_err(|e| cdk_err("waiting for the invoice to be paid", e))?;
        let _g = self.guard(mint, None).await?;
        let proofs = w
            .mint(&quote.id, SplitTarget::default(), None)
            .await
            .map_err(|e| cdk_err("mint", e))?;
        Ok(proofs.total_amount().map_err(werr)?.into())
    }

    /// Pay a bolt11 invoice from `mint` (or the first mint that can).
    pub async fn pay(&self, mint: &str, bolt11: &str) -> Result<(u64, u64)> {
        let _g = self.guard(mint, None).await?;
        let w = self.wallet(mint).await?;
        let quote = w
            .melt_quote(PaymentMethod::BOLT11, bolt11.trim().to_string(), None, None)
            .await
            .map_err(|e| cdk_err("melt quote", e))?;
        let prepared = w
            .prepare_melt(&quote.id, std::collections::HashMap::new())
            .await
            .map_err(|e| cdk_err("pay", e))?;
        let done = prepared.confirm().await.map_err(|e| cdk_err("pay", e))?;
        Ok((done.amount().into(), done.fee_paid().into()))
    }

    /// Mints with a wallet here.
    pub async fn mints(&self) -> Vec<String> {
        let mut m: Vec<String> = self
            .repo
            .get_wallets()
            .await
            .iter()
            .map(|w| w.mint_url.to_string())
            .collect();
        m.sort();
        m.dedup();
        m
    }
}

/// Whether `journal` holds sends at `mint` that never got journaled or
/// handed out.
fn unfinished_sends(journal: &Journal, mint: &str) -> Result<bool> {
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    Ok(journal
        .sends()?
        .iter()
        .any(|r| norm(&r.mint) == norm(mint) && matches!(r.state.as_str(), "prepared" | "created")))
}

fn parse_op(op: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(op).map_err(|e| werr(format!("bad operation id {op}: {e}")))
}

/// NUT-11 conditions for a lock.
fn conditions(lock: Option<Lock>) -> Result<Option<SpendingConditions>> {
    let Some(l) = lock else {
        return Ok(None);
    };
    let c = Conditions::new(
        Some(l.locktime),
        None,
        Some(vec![cashu_pubkey(&l.refund)?]),
        None,
        None,
        None,
    )
    .map_err(werr)?;
    Ok(Some(SpendingConditions::new_p2pk(
        cashu_pubkey(&l.worker)?,
        Some(c),
    )))
}

/// What the mint says about a token's proofs (NUT-07).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// Every proof is unspent.
    Unspent,
    /// Some proof is pending (being spent).
    Pending,
    /// Some proof is spent.
    Spent,
}

/// Ask the token's mint (NUT-07) whether its proofs are spendable. Uses a
/// throwaway in-memory wallet: the user's store is not touched.
pub async fn check_token(token: &PaymentToken, timeout: Duration) -> Result<TokenState> {
    let mint = token.info().mint.clone();
    let unreachable = |e: cdk::Error| werr(format!("cannot reach mint {mint}: {e}"));
    let work = async {
        let t = Token::from_str(token.expose()).map_err(werr)?;
        let store = cdk_sqlite::WalletSqliteDatabase::new(":memory:")
            .await
            .map_err(werr)?;
        let seed: [u8; 64] = {
            let mut s = [0u8; 64];
            s[..32].copy_from_slice(&cdk::nuts::SecretKey::generate().to_secret_bytes());
            s
        };
        let unit = t.unit().unwrap_or(CurrencyUnit::Sat);
        // Only the mint connector is used: the wallet's own keyset cache
        // keeps the wallet's unit alone, and a token may lie about its unit.
        let w = Wallet::new(&mint, CurrencyUnit::Sat, Arc::new(store), seed, None).map_err(werr)?;
        let connector = w.mint_connector();
        let infos: Vec<KeySetInfo> = connector
            .get_mint_keysets()
            .await
            .map_err(unreachable)?
            .keysets;
        let proofs = t.proofs(&infos).map_err(|e| {
            Error::input(format!(
                "the token's proofs do not match the mint's keysets: {e}"
            ))
        })?;
        // Each proof's keyset must be the mint's, in the token's unit, hold
        // a key for the proof's amount, and (NUT-12) its DLEQ proof, when
        // there is one, must verify against that key.
        let mut keys: std::collections::HashMap<cdk::nuts::Id, cdk::nuts::Keys> =
            std::collections::HashMap::new();
        for p in &proofs {
            let info = infos.iter().find(|i| i.id == p.keyset_id).ok_or_else(|| {
                Error::input(format!(
                    "the token names keyset {} that mint {mint} does not have",
                    p.keyset_id
                ))
            })?;
            if info.unit != unit {
                return Err(Error::input(format!(
                    "the token says its unit is `{}` but its keyset {} at {mint} is in `{}`",
                    crate::text::sanitize(&unit.to_string()),
                    p.keyset_id,
                    info.unit
                )));
            }
            let keyset_keys = match keys.entry(p.keyset_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    connector
                        .get_mint_keyset(p.keyset_id)
                        .await
                        .map_err(unreachable)?
                        .keys,
                ),
            };
            let key = keyset_keys
                .amount_key(p.amount)
                .ok_or_else(|| {
                    Error::input(format!(
                        "the token holds a proof of {} {unit} but keyset {} at {mint} has no such denomination (edited token)",
                        p.amount, p.keyset_id
                    ))
                })?;
            if p.dleq.is_some() && p.verify_dleq(key).is_err() {
                return Err(Error::input(format!(
                    "a proof of {} {unit} in the token fails its DLEQ check against mint {mint}'s key (edited or forged token)",
                    p.amount
                )));
            }
        }
        let ys = proofs.ys().map_err(werr)?;
        let resp = connector
            .post_check_state(CheckStateRequest { ys })
            .await
            .map_err(unreachable)?;
        let states: Vec<State> = resp.states.into_iter().map(|s| s.state).collect();
        Ok(if states.contains(&State::Spent) {
            TokenState::Spent
        } else if states.contains(&State::Pending) {
            TokenState::Pending
        } else {
            TokenState::Unspent
        })
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        werr(format!(
            "timed out after {} waiting for mint {}",
            crate::config::format_duration(timeout),
            token.info().mint
        ))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdk::nuts::{Id, Proof};

    fn token_with(id: &str) -> (Token, Vec<KeySetInfo>) {
        let id = Id::from_str(id).expect("id");
        let c = cdk::nuts::PublicKey::from_hex(
            "02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2",
        )
        .expect("point");
        let proofs = vec![
            Proof::new(Amount::from(4), id, cdk::secret::Secret::generate(), c),
            Proof::new(Amount::from(1), id, cdk::secret::Secret::generate(), c),
        ];
        let t = Token::new(
            MintUrl::from_str("http://127.0.0.1:3338").expect("url"),
            proofs,
            None,
            CurrencyUnit::Sat,
        );
        let info = KeySetInfo {
            id,
            unit: CurrencyUnit::Sat,
            active: true,
            input_fee_ppk: 0,
            final_expiry: None,
        };
        (t, vec![info])
    }

    #[test]
    fn v3_tokens_carry_full_keyset_ids_and_decode_back() {
        for id in [
            "009a1f293253e41e",
            "01adc013fa9d85171586660abab27579888611659d357bc86bc09cb26eee8bc035",
        ] {
            let (t, keysets) = token_with(id);
            let v3 = full_id_v3(&t, &keysets).expect("encodes");
            assert!(v3.starts_with("cashuA"));
            let back = cdk::nuts::TokenV3::from_str(&v3).expect("decodes");
            for p in &back.token[0].proofs {
                assert_eq!(p.keyset_id.to_string(), id);
            }
            // Same value, same proofs, readable by jobctl's own parser.
            let parsed = PaymentToken::parse(&v3).expect("parses");
            assert_eq!(parsed.info().amount, 5);
            assert_eq!(parsed.info().version, 'A');
            let again = Token::from_str(&v3).expect("token");
            assert_eq!(again.proofs(&keysets).expect("proofs").len(), 2);
        }
        // Without the mint's keysets a version-01 short id cannot be
        // widened: no V3 (the caller keeps V4).
        let (t, _) =
            token_with("01adc013fa9d85171586660abab27579888611659d357bc86bc09cb26eee8bc035");
        assert!(full_id_v3(&t, &[]).is_none());
    }

    #[test]
    fn token_formats_parse() {
        assert_eq!("cashuA".parse::<TokenFormat>(), Ok(TokenFormat::V3));
        assert_eq!("cashuB".parse::<TokenFormat>(), Ok(TokenFormat::V4));
        assert!("cashuC".parse::<TokenFormat>().is_err());
    }
}
