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
use crate::files::FileLock;
use crate::journal::Journal;
use crate::payment::PaymentToken;

mod check;
mod keyset_cache;
mod reconcile;
mod recover;
mod relock;
mod send;
mod token;

pub use check::{check_token, TokenState};
pub use recover::{Fix, Reconciled};
pub use relock::Relocked;
pub use send::Sent;
use token::keyset_infos;
pub use token::{encode_token, full_id_v3, TokenFormat};

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
    crate::files::create_private_dir(dir)?;
    crate::files::refuse_open("wallet directory", dir)?;
    FileLock::acquire(&lock_path(dir), wait)
}

/// The default wallet directory: `$XDG_DATA_HOME/jobctl/wallet`.
pub fn default_dir() -> PathBuf {
    crate::config::data_dir().join("wallet")
}

/// `flag` beats `JOBCTL_WALLET_DIR` beats the default (the rule lives in
/// [`crate::settings::wallet_dir`]).
pub fn resolve_dir(flag: Option<&Path>) -> PathBuf {
    crate::settings::wallet_dir(flag)
}

fn werr(msg: impl std::fmt::Display) -> Error {
    Error::Wallet(msg.to_string())
}

/// What a cdk error means for the user, by cdk's error variant.
#[derive(Debug, PartialEq, Eq)]
enum Fault<'a> {
    /// The mint says the token's proofs are spent.
    Spent,
    /// The mint could not be reached (or answered garbage): the last
    /// part of the transport's message.
    Unreachable(&'a str),
    /// The mint says the proofs are pending (being spent).
    Pending,
    /// Anything else: cdk's own words.
    Other,
}

fn fault(e: &cdk::Error) -> Fault<'_> {
    match e {
        cdk::Error::TokenAlreadySpent => Fault::Spent,
        cdk::Error::TokenPending => Fault::Pending,
        cdk::Error::HttpError(_, m) => Fault::Unreachable(m.rsplit(": ").next().unwrap_or(m)),
        _ => Fault::Other,
    }
}

/// Translate cdk errors into one line, naming "already spent" plainly.
fn cdk_err(what: &str, e: cdk::Error) -> Error {
    match fault(&e) {
        Fault::Spent => Error::Wallet(format!("{what}: the token is already spent")),
        Fault::Unreachable(why) => Error::Wallet(format!("{what}: cannot reach the mint ({why})")),
        Fault::Pending => Error::Wallet(format!(
            "{what}: the token's proofs are pending at the mint"
        )),
        Fault::Other => Error::Wallet(format!("{what}: {e}")),
    }
}

/// What redeeming a token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// This much was credited to the wallet.
    Credited(u64),
    /// The mint says someone spent it first.
    AlreadySpent,
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
    crate::files::create_private_file(path)
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
    crate::files::refuse_open("wallet seed", &path)?;
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
        crate::files::create_private_dir(dir)?;
        crate::files::refuse_open("wallet directory", dir)?;
        // First runs in parallel create the seed and the store's schema
        // once: one at a time.
        let creating = FileLock::acquire_async(&lock_path(dir), LOCK_WAIT).await?;
        let seed = load_seed(dir)?;
        let db_path = dir.join("wallet.sqlite");
        create_private_file(&db_path)?;
        crate::files::refuse_open("wallet store", &db_path)?;
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

    /// The mint holding the most sat that can cover `amount` (or any, if
    /// 0): where `wallet send`/`wallet pay` take from without `--mint`.
    pub async fn richest_mint(&self, amount: u64) -> Result<String> {
        let balances = self.balances().await?;
        balances
            .iter()
            .filter(|b| b.unit == "sat" && b.amount >= amount)
            .max_by_key(|b| b.amount)
            .map(|b| b.mint.clone())
            .ok_or_else(|| {
                let have: Vec<String> = balances
                    .iter()
                    .map(|b| format!("{} {} at {}", b.amount, b.unit, b.mint))
                    .collect();
                Error::input(format!(
                    "no mint in the wallet holds {amount} sat (wallet: {})",
                    if have.is_empty() {
                        "empty".to_string()
                    } else {
                        have.join(", ")
                    }
                ))
            })
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
        match self.redeem(token, keys).await? {
            Redeemed::Credited(amount) => Ok(amount),
            Redeemed::AlreadySpent => Err(cdk_err("receive", cdk::Error::TokenAlreadySpent)),
        }
    }

    /// [`LocalWallet::receive`], telling "already spent" apart as data.
    pub async fn redeem(&self, token: &str, keys: Vec<cdk::nuts::SecretKey>) -> Result<Redeemed> {
        let t = PaymentToken::parse_any_size(token)?;
        let _g = self.guard(&t.info().mint, None).await?;
        let w = self.wallet(&t.info().mint).await?;
        let received = w
            .receive(
                token.trim(),
                ReceiveOptions {
                    p2pk_signing_keys: keys,
                    ..Default::default()
                },
            )
            .await;
        match received {
            Ok(amount) => Ok(Redeemed::Credited(amount.into())),
            Err(e) if fault(&e) == Fault::Spent => Ok(Redeemed::AlreadySpent),
            Err(e) => Err(cdk_err("receive", e)),
        }
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
        .any(|r| norm(&r.mint) == norm(mint) && r.state.is_unfinished()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_errors_are_classified_by_cdks_variant_not_its_words() {
        let refused = cdk::Error::HttpError(
            None,
            "error sending request: tcp connect error: Connection refused (os error 111)".into(),
        );
        assert_eq!(
            cdk_err("receive", refused).to_string(),
            Error::Wallet(
                "receive: cannot reach the mint (Connection refused (os error 111))".into()
            )
            .to_string()
        );
        assert_eq!(fault(&cdk::Error::TokenAlreadySpent), Fault::Spent);
        assert_eq!(fault(&cdk::Error::TokenPending), Fault::Pending);
        // Words alone no longer decide: only the mint's code does.
        let worded = cdk::Error::Custom("token already spent".into());
        assert_eq!(fault(&worded), Fault::Other);
    }
}
