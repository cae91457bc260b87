//! Swapping a bearer token into one locked (NUT-11) to a worker, minding
//! the mint's input fees.

use super::*;

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

impl LocalWallet {
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
        let (fee_in, min_out_fee) = input_fees(&w, token, &mint).await?;
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
            let tried = self
                .try_lock(
                    &w,
                    &mint,
                    amount,
                    received,
                    &conditions,
                    journal.as_deref_mut(),
                )
                .await;
            match tried.map_err(where_)? {
                Attempt::Smaller(next) => amount = next,
                Attempt::Locked(sent) => {
                    return Ok(Relocked {
                        sent,
                        given,
                        received,
                        locked: amount,
                    })
                }
            }
        }
        Err(where_(format!(
            "cannot lock any of it to the worker: the mint's fees take it all (swap fee {} sat)",
            given.saturating_sub(received)
        )))
    }

    /// One try at locking `amount` of the `received` sat to the worker:
    /// journaled `prepared` before the mint is asked, `created` after.
    /// An error says what failed; the caller adds where the value is.
    async fn try_lock(
        &self,
        w: &Wallet,
        mint: &str,
        amount: u64,
        received: u64,
        conditions: &Option<SpendingConditions>,
        journal: Option<&mut Journal>,
    ) -> std::result::Result<Attempt, String> {
        let options = SendOptions {
            conditions: conditions.clone(),
            include_fee: true,
            ..Default::default()
        };
        let prepared = match w.prepare_send(Amount::from(amount), options).await {
            Ok(p) => p,
            Err(cdk::Error::InsufficientFunds) => return Ok(Attempt::Smaller(amount - 1)),
            Err(e) => return Err(cdk_err("locking it to the worker", e).to_string()),
        };
        let fee: u64 = prepared.fee().into();
        if amount + fee > received {
            let _ = prepared.cancel().await;
            return Ok(Attempt::Smaller(
                received.saturating_sub(fee).min(amount - 1),
            ));
        }
        self.confirm_logged(
            w,
            prepared,
            mint,
            amount,
            journal,
            "lock",
            "locking it to the worker",
        )
        .await
        .map(Attempt::Locked)
        .map_err(|e| e.to_string())
    }
}

/// What one try at locking gave.
enum Attempt {
    /// Too much for what the swap credited: try this amount.
    Smaller(u64),
    /// Locked.
    Locked(Sent),
}

/// Input fees of the token's own proofs (NUT-02), before swapping, and the
/// least fee of the locked token (it needs at least one proof, whose fee
/// is paid too).
async fn input_fees(w: &Wallet, token: &PaymentToken, mint: &str) -> Result<(u64, u64)> {
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
    Ok((fee_in, max_ppk.div_ceil(1000)))
}
