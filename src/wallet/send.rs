//! Making a token from the wallet (`wallet send`, a job's payment),
//! journaled before the mint is asked.

use super::*;
use crate::journal::SendState;

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

impl LocalWallet {
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
        self.confirm_logged(&w, prepared, mint, amount, journal, purpose, "send")
            .await
    }

    /// Confirm a prepared send, journaled as `purpose`: `prepared` before
    /// the mint is asked, `created` with the token right after; a token
    /// that cannot be journaled is taken back rather than handed out.
    /// `what` names the step in a mint's error.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn confirm_logged(
        &self,
        w: &Wallet,
        prepared: cdk::wallet::PreparedSend<'_>,
        mint: &str,
        amount: u64,
        mut journal: Option<&mut Journal>,
        purpose: &str,
        what: &str,
    ) -> Result<Sent> {
        let op_id = prepared.operation_id().to_string();
        let fee: u64 = prepared.fee().into();
        if let Some(j) = journal.as_deref_mut() {
            if let Err(e) = j.send_prepared(&op_id, mint, amount, purpose) {
                let _ = prepared.cancel().await;
                return Err(e);
            }
        }
        let token = match prepared.confirm(None).await {
            Ok(t) => encode_token(w, &t, self.format).await,
            Err(e) => {
                if let Some(j) = journal.as_deref_mut() {
                    let _ = j.send_state(&op_id, SendState::Failed, &e.to_string());
                }
                return Err(cdk_err(what, e));
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
}
