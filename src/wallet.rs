//! The local Cashu wallet (cdk): a cdk-sqlite store and a BIP-39 seed under
//! the XDG data dir (both 0600), balances per mint, receiving and sending
//! tokens (plain, or NUT-11 locked to a worker with a refund path for the
//! user), minting over Lightning, paying invoices, and NUT-07 checks of
//! tokens the wallet does not own.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cdk::amount::SplitTarget;
use cdk::mint_url::MintUrl;
use cdk::nuts::nut00::ProofsMethods;
use cdk::nuts::{
    CheckStateRequest, Conditions, CurrencyUnit, KeySetInfo, PaymentMethod, SpendingConditions,
    State, Token,
};
use cdk::wallet::{ReceiveOptions, SendOptions, Wallet, WalletRepository, WalletRepositoryBuilder};
use cdk::Amount;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::payment::PaymentToken;

/// Env var overriding the wallet directory.
pub const ENV_WALLET_DIR: &str = "JOBCTL_WALLET_DIR";

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
}

/// The opened wallet.
pub struct LocalWallet {
    repo: WalletRepository,
    dir: PathBuf,
}

fn create_private_file(path: &Path) -> Result<()> {
    crate::keys::create_private_file(path)
        .map_err(|e| werr(format!("cannot create {}: {e}", path.display())))
}

fn load_seed(dir: &Path) -> Result<[u8; 64]> {
    let path = dir.join("seed");
    if !path.exists() {
        let m = bip39::Mnemonic::generate(12).map_err(werr)?;
        create_private_file(&path)?;
        std::fs::write(&path, format!("{m}\n"))
            .map_err(|e| werr(format!("cannot write {}: {e}", path.display())))?;
    }
    let meta = std::fs::metadata(&path)
        .map_err(|e| werr(format!("cannot read {}: {e}", path.display())))?;
    if let Some(mode) = crate::keys::too_open(&meta) {
        return Err(werr(format!(
            "seed {} has permissions {mode:04o} (readable by others); run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
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
    /// Open (creating on first use) the wallet in `dir`.
    pub async fn open(dir: &Path) -> Result<LocalWallet> {
        crate::keys::create_private_dir(dir)?;
        let seed = load_seed(dir)?;
        let db_path = dir.join("wallet.sqlite");
        create_private_file(&db_path)?;
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
        Ok(LocalWallet {
            repo,
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The wallet for `mint` in sat, created if new.
    pub async fn wallet(&self, mint: &str) -> Result<Wallet> {
        let url = MintUrl::from_str(mint)
            .map_err(|e| Error::input(format!("`{mint}` is not a mint URL: {e}")))?;
        let w = self
            .repo
            .get_or_create_wallet(url, CurrencyUnit::Sat, None)
            .await
            .map_err(|e| cdk_err(&format!("mint {mint}"), e))?;
        if let Err(e) = w.recover_incomplete_sagas().await {
            tracing::warn!("wallet recovery for {mint}: {e}");
        }
        Ok(w)
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
            out.push(Balance {
                mint: w.mint_url.to_string(),
                unit: w.unit.to_string(),
                amount: amount.into(),
                pending: pending.into(),
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
        let w = self.wallet(mint).await?;
        let have: u64 = w.total_balance().await.map_err(werr)?.into();
        if have < amount {
            return Err(Error::input(format!(
                "the wallet holds {have} sat at {mint}, less than {amount} sat"
            )));
        }
        let conditions = match lock {
            None => None,
            Some(l) => {
                let c = Conditions::new(
                    Some(l.locktime),
                    None,
                    Some(vec![cashu_pubkey(&l.refund)?]),
                    None,
                    None,
                    None,
                )
                .map_err(werr)?;
                Some(SpendingConditions::new_p2pk(
                    cashu_pubkey(&l.worker)?,
                    Some(c),
                ))
            }
        };
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
        let token = prepared
            .confirm(None)
            .await
            .map_err(|e| cdk_err("send", e))?;
        Ok(token.to_string())
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
        let proofs = w
            .wait_and_mint_quote(quote, SplitTarget::default(), None, wait)
            .await
            .map_err(|e| cdk_err("mint", e))?;
        Ok(proofs.total_amount().map_err(werr)?.into())
    }

    /// Pay a bolt11 invoice from `mint` (or the first mint that can).
    pub async fn pay(&self, mint: &str, bolt11: &str) -> Result<(u64, u64)> {
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
                    crate::output::sanitize(&unit.to_string()),
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
