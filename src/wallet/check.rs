//! NUT-07 pre-flight check of a token the wallet does not own, with a
//! throwaway in-memory wallet.

use super::*;

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
        verify_proofs(&connector, &proofs, &infos, &unit, &mint).await?;
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

/// Each proof's keyset must be the mint's, in the token's unit, hold a
/// key for the proof's amount, and (NUT-12) its DLEQ proof, when there is
/// one, must verify against that key.
async fn verify_proofs(
    connector: &std::sync::Arc<dyn cdk::wallet::MintConnector + Send + Sync>,
    proofs: &[cdk::nuts::Proof],
    infos: &[KeySetInfo],
    unit: &CurrencyUnit,
    mint: &str,
) -> Result<()> {
    let unreachable = |e: cdk::Error| werr(format!("cannot reach mint {mint}: {e}"));
    // Each proof's keyset must be the mint's, in the token's unit, hold
    // a key for the proof's amount, and (NUT-12) its DLEQ proof, when
    // there is one, must verify against that key.
    let mut keys: std::collections::HashMap<cdk::nuts::Id, cdk::nuts::Keys> =
        std::collections::HashMap::new();
    for p in proofs {
        let info = infos.iter().find(|i| i.id == p.keyset_id).ok_or_else(|| {
            Error::input(format!(
                "the token names keyset {} that mint {mint} does not have",
                p.keyset_id
            ))
        })?;
        if info.unit != *unit {
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
    Ok(())
}
