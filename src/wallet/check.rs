//! NUT-07 pre-flight check of a token the wallet does not own, straight
//! through the mint's HTTP API (no wallet store).

use std::collections::hash_map::{Entry, HashMap};

use cdk::wallet::MintConnector;

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

/// Ask the token's mint (NUT-07) whether its proofs are spendable, in one
/// round trip: the state of the proofs (whose `Y`s come from the token's
/// secrets alone), the mint's keysets and its active keys are asked for
/// at once. The user's wallet is not touched.
pub async fn check_token(token: &PaymentToken, timeout: Duration) -> Result<TokenState> {
    let mint = token.info().mint.clone();
    let unreachable = |e: cdk::Error| werr(format!("cannot reach mint {mint}: {e}"));
    let work = async {
        let t = Token::from_str(token.expose()).map_err(werr)?;
        let url = cdk::mint_url::MintUrl::from_str(&mint).map_err(werr)?;
        let connector = cdk::wallet::HttpClient::new(url, None);
        let ys = t
            .token_secrets()
            .iter()
            .map(|s| cdk::dhke::hash_to_curve(s.as_bytes()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(werr)?;
        let unit = t.unit().unwrap_or(CurrencyUnit::Sat);
        let (infos, active, states) = tokio::join!(
            connector.get_mint_keysets(),
            connector.get_mint_keys(),
            connector.post_check_state(CheckStateRequest { ys }),
        );
        let infos: Vec<KeySetInfo> = infos.map_err(unreachable)?.keysets;
        let proofs = t.proofs(&infos).map_err(|e| {
            Error::input(format!(
                "the token's proofs do not match the mint's keysets: {e}"
            ))
        })?;
        // The active keys came with the first round trip; a keyset that
        // is no longer active is fetched on its own.
        let mut keys: HashMap<cdk::nuts::Id, cdk::nuts::Keys> = active
            .map(|sets| sets.into_iter().map(|k| (k.id, k.keys)).collect())
            .unwrap_or_default();
        verify_proofs(&connector, &proofs, &infos, &unit, &mint, &mut keys).await?;
        let states: Vec<State> = states
            .map_err(unreachable)?
            .states
            .into_iter()
            .map(|s| s.state)
            .collect();
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
    connector: &cdk::wallet::HttpClient,
    proofs: &[cdk::nuts::Proof],
    infos: &[KeySetInfo],
    unit: &CurrencyUnit,
    mint: &str,
    keys: &mut HashMap<cdk::nuts::Id, cdk::nuts::Keys>,
) -> Result<()> {
    let unreachable = |e: cdk::Error| werr(format!("cannot reach mint {mint}: {e}"));
    // Each proof's keyset must be the mint's, in the token's unit, hold
    // a key for the proof's amount, and (NUT-12) its DLEQ proof, when
    // there is one, must verify against that key.
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
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
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
