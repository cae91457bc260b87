//! The worker's money: the mints' wallets (opened once), taking a job's
//! payment, and making change, fee-aware, with every mint call bounded.

use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::payment::PaymentToken;
use crate::wallet;

/// Change handed back, or why not.
#[derive(Debug, Default)]
pub(super) struct Change {
    pub(super) token: Option<String>,
    /// What the client gets when it redeems the token.
    pub(super) amount: u64,
    /// Mint fees paid for it (the swap, and the redemption the token includes).
    pub(super) fees: u64,
    pub(super) note: Option<String>,
}

/// Why a payment could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TakeError {
    /// The mint says the token is spent (by someone, maybe an earlier run).
    AlreadySpent,
    /// Anything else: the mint's words, or a timeout.
    Other(String),
}

impl std::fmt::Display for TakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TakeError::AlreadySpent => f.write_str("the token is already spent"),
            TakeError::Other(s) => f.write_str(s),
        }
    }
}

fn norm_mint(s: &str) -> String {
    s.trim_end_matches('/').to_ascii_lowercase()
}

impl Shared {
    /// The cdk wallet for `mint`, opened once (bounded by the mint timeout).
    pub(super) async fn mint_wallet(
        &self,
        mint: &str,
    ) -> std::result::Result<cdk::wallet::Wallet, String> {
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

    /// Open (and crash-recover) every accepted mint's wallet; a mint that
    /// is down is retried per job.
    pub(super) async fn open_mints(&self) {
        for m in self.cfg.mints.clone() {
            if let Err(e) = self.mint_wallet(&m).await {
                tracing::warn!("mint {m}: {e}");
            }
        }
    }

    /// Redeem the job's payment into the wallet; the amount credited (net
    /// of the mint's input fee).
    pub(super) async fn take_payment(&self, t: &PaymentToken) -> Result<u64, TakeError> {
        let mint = &t.info().mint;
        let w = self.mint_wallet(mint).await.map_err(TakeError::Other)?;
        let key = wallet::cashu_secret(self.keys.secret_key())
            .map_err(|e| TakeError::Other(e.to_string()))?;
        let opts = cdk::wallet::ReceiveOptions {
            p2pk_signing_keys: vec![key],
            ..Default::default()
        };
        let secs = self.cfg.mint_timeout.max(1);
        match tokio::time::timeout(self.mint_timeout(), w.receive(t.expose().trim(), opts)).await {
            Ok(Ok(a)) => Ok(a.into()),
            Ok(Err(cdk::Error::TokenAlreadySpent)) => Err(TakeError::AlreadySpent),
            Ok(Err(e)) => Err(TakeError::Other(e.to_string())),
            Err(_) => Err(TakeError::Other(format!(
                "mint {mint} did not answer within {secs}s (if it took the token \
                 anyway, the worker's wallet recovers it on restart)"
            ))),
        }
    }

    /// What the mint charges to redeem `proofs` proofs of its active keyset.
    pub(super) async fn redeem_fee(&self, mint: &str, proofs: usize) -> u64 {
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
    pub(super) async fn change(&self, mint: &str, budget: u64) -> Change {
        if budget == 0 {
            return Change::default();
        }
        let _one_at_a_time = self.change_lock.lock().await;
        let w = match self.mint_wallet(mint).await {
            Ok(w) => w,
            Err(e) => return no_change(budget, e),
        };
        let step = self.mint_timeout();
        let mut m = ChangeMaker {
            w: &w,
            mint,
            budget,
            amount: budget,
            last: String::from("the mint's fees exceed it"),
            failed_swaps: 0,
            step,
            deadline: Instant::now() + step * 2,
            format: self.cfg.token_format.parse().unwrap_or_default(),
        };
        // Each round either succeeds, aims lower, or spends time: the
        // deadline and the round limit end it either way. A failed swap is
        // tried once more.
        for _ in 0..24 {
            if m.amount == 0 {
                break;
            }
            match m.round().await {
                Round::Made(c) => return c,
                Round::Again => {}
                Round::GiveUp => break,
            }
        }
        no_change(budget, m.last)
    }
}

/// One attempt at change, and what comes next.
enum Round {
    Made(Change),
    Again,
    GiveUp,
}

/// The state of [`Shared::change`] between rounds.
struct ChangeMaker<'a> {
    w: &'a cdk::wallet::Wallet,
    mint: &'a str,
    budget: u64,
    amount: u64,
    /// Why the last round made nothing.
    last: String,
    failed_swaps: u32,
    step: Duration,
    deadline: Instant,
    format: wallet::TokenFormat,
}

impl ChangeMaker<'_> {
    /// Prepare a send of `amount`, check its fee, confirm it.
    async fn round(&mut self) -> Round {
        let mint = self.mint;
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.last = format!("mint {mint} did not answer in time");
            return Round::GiveUp;
        }
        let t = self.step.min(left);
        let opts = cdk::wallet::SendOptions {
            include_fee: true,
            ..Default::default()
        };
        let prepared =
            match tokio::time::timeout(t, self.w.prepare_send(self.amount.into(), opts)).await {
                Err(_) => {
                    self.last = format!("mint {mint} did not answer within {}s", t.as_secs());
                    return Round::Again;
                }
                Ok(Err(cdk::Error::InsufficientFunds)) => {
                    self.last = "the worker's wallet cannot cover it".into();
                    self.amount -= 1;
                    return Round::Again;
                }
                Ok(Err(e)) => {
                    self.last = e.to_string();
                    return Round::GiveUp;
                }
                Ok(Ok(p)) => p,
            };
        let fee = u64::from(prepared.fee());
        if self.amount + fee > self.budget {
            // Release the reserved proofs (local only) and aim lower.
            let _ = tokio::time::timeout(t, prepared.cancel()).await;
            self.last = format!("the mint's fees ({fee} sat) leave nothing of it");
            let next = self.budget.saturating_sub(fee);
            self.amount = if next < self.amount {
                next
            } else {
                self.amount - 1
            };
            return Round::Again;
        }
        self.confirm(prepared, fee, t).await
    }

    /// Swap for the prepared token; a failed swap is tried once more.
    async fn confirm(
        &mut self,
        prepared: cdk::wallet::PreparedSend<'_>,
        fee: u64,
        t: Duration,
    ) -> Round {
        match tokio::time::timeout(t, prepared.confirm(None)).await {
            Ok(Ok(token)) => {
                return Round::Made(Change {
                    token: Some(wallet::encode_token(self.w, &token, self.format).await),
                    amount: self.amount,
                    fees: fee,
                    note: None,
                });
            }
            Ok(Err(e)) => {
                // A definite failure: cdk released the proofs.
                self.last = e.to_string();
            }
            Err(_) => {
                // The swap may or may not have happened: its proofs stay
                // reserved (recovered on restart); try again with others.
                self.last = format!(
                    "mint {} did not answer within {}s while making change",
                    self.mint,
                    t.as_secs()
                );
            }
        }
        self.failed_swaps += 1;
        if self.failed_swaps >= 2 {
            Round::GiveUp
        } else {
            Round::Again
        }
    }
}

/// No change: logged, and the reason for the result's content.
pub(super) fn no_change(budget: u64, why: impl std::fmt::Display) -> Change {
    tracing::warn!("cannot make change of {budget} sat: {why}");
    Change {
        note: Some(format!("no change for the {budget} sat owed: {why}")),
        ..Default::default()
    }
}

/// The status message of a job that ends without running (`why`), with
/// its refund.
pub(super) fn refund_message(why: &str, c: &Change) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn take_errors_read_as_before() {
        assert_eq!(
            TakeError::AlreadySpent.to_string(),
            "the token is already spent"
        );
        assert_eq!(TakeError::Other("x".into()).to_string(), "x");
    }
}
