//! NUT-07 pre-flight check of a token the wallet does not own, straight
//! through the mint's HTTP API (no wallet store).

use cdk::nuts::Proofs;
use cdk::wallet::MintConnector;

use super::keyset_cache::KeysetCache;
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
/// secrets alone) and, for keysets not in the cache under `keysets` (see
/// [`KeysetCache`]), the mint's keysets and active keys, all at once. The
/// user's wallet is not touched.
pub async fn check_token(
    token: &PaymentToken,
    timeout: Duration,
    keysets: Option<&Path>,
) -> Result<TokenState> {
    let mint = token.info().mint.clone();
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
        // The states request goes out first; the keysets are read and the
        // proofs verified against them (CPU work: on a blocking thread)
        // while it is on its way.
        let states = connector.post_check_state(CheckStateRequest { ys });
        let cache = keysets.map(|dir| KeysetCache::new(dir, &mint));
        let unit = t.unit().unwrap_or(CurrencyUnit::Sat);
        let verified = async {
            let from_cache = {
                let (t, mint, unit, cache) = (t.clone(), mint.clone(), unit.clone(), cache.clone());
                tokio::task::spawn_blocking(move || verify_cached(&t, cache.as_ref(), &unit, &mint))
            };
            let checked = from_cache
                .await
                .map_err(|e| werr(format!("the token check did not finish: {e}")))?;
            if let Some(checked) = checked {
                return checked;
            }
            let (proofs, sets) = online(&t, &connector, &mint).await?;
            verify_proofs(&proofs, &sets, &unit, &mint)?;
            if let Some(cache) = &cache {
                cache.store(&sets);
            }
            Ok(())
        };
        let (states, verified) = tokio::join!(states, verified);
        verified?;
        let states: Vec<State> = states
            .map_err(|e| unreachable(&mint, e))?
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

fn unreachable(mint: &str, e: cdk::Error) -> Error {
    werr(format!("cannot reach mint {mint}: {e}"))
}

/// The token verified against the keysets in `cache`; `None` when one of
/// its keysets is not there (the mint is asked then).
fn verify_cached(
    t: &Token,
    cache: Option<&KeysetCache>,
    unit: &CurrencyUnit,
    mint: &str,
) -> Option<Result<()>> {
    let known = cache.map(KeysetCache::load).unwrap_or_default();
    let (proofs, sets) = offline(t, &known)?;
    Some(verify_proofs(&proofs, &sets, unit, mint))
}

/// The token's proofs and their keysets, when every one is in `known`.
fn offline(t: &Token, known: &[cdk::nuts::KeySet]) -> Option<(Proofs, Vec<cdk::nuts::KeySet>)> {
    if known.is_empty() {
        return None;
    }
    let proofs = t.proofs(&keyset_infos(known.to_vec())).ok()?;
    let sets = used(&proofs, known)?;
    Some((proofs, sets))
}

/// The keysets of `proofs` among `sets`; `None` when one is missing.
fn used(proofs: &Proofs, sets: &[cdk::nuts::KeySet]) -> Option<Vec<cdk::nuts::KeySet>> {
    let mut out: Vec<cdk::nuts::KeySet> = Vec::new();
    for p in proofs {
        if out.iter().any(|s| s.id == p.keyset_id) {
            continue;
        }
        out.push(sets.iter().find(|s| s.id == p.keyset_id)?.clone());
    }
    Some(out)
}

/// The token's proofs and their keysets from the mint: its keyset list
/// and active keys at once, then any inactive keyset a proof names.
async fn online(
    t: &Token,
    connector: &cdk::wallet::HttpClient,
    mint: &str,
) -> Result<(Proofs, Vec<cdk::nuts::KeySet>)> {
    let (infos, active) = tokio::join!(connector.get_mint_keysets(), connector.get_mint_keys());
    let infos: Vec<KeySetInfo> = infos.map_err(|e| unreachable(mint, e))?.keysets;
    let proofs = t.proofs(&infos).map_err(|e| {
        Error::input(format!(
            "the token's proofs do not match the mint's keysets: {e}"
        ))
    })?;
    let mut sets = active.unwrap_or_default();
    for p in &proofs {
        let info = infos.iter().find(|i| i.id == p.keyset_id).ok_or_else(|| {
            Error::input(format!(
                "the token names keyset {} that mint {mint} does not have",
                p.keyset_id
            ))
        })?;
        if !sets.iter().any(|s| s.id == p.keyset_id) {
            let mut set = connector
                .get_mint_keyset(p.keyset_id)
                .await
                .map_err(|e| unreachable(mint, e))?;
            set.unit = info.unit.clone();
            sets.push(set);
        }
    }
    // The unit is the mint's list's word for it.
    for s in &mut sets {
        if let Some(info) = infos.iter().find(|i| i.id == s.id) {
            s.unit = info.unit.clone();
        }
    }
    let used = used(&proofs, &sets).ok_or_else(|| werr("a keyset went missing"))?;
    Ok((proofs, used))
}

/// Each proof's keyset (in `sets`) must be in the token's unit, hold a
/// key for the proof's amount, and (NUT-12) its DLEQ proof, when there is
/// one, must verify against that key.
fn verify_proofs(
    proofs: &[cdk::nuts::Proof],
    sets: &[cdk::nuts::KeySet],
    unit: &CurrencyUnit,
    mint: &str,
) -> Result<()> {
    for p in proofs {
        let set = sets
            .iter()
            .find(|s| s.id == p.keyset_id)
            .ok_or_else(|| werr(format!("keyset {} not loaded", p.keyset_id)))?;
        if set.unit != *unit {
            return Err(Error::input(format!(
                "the token says its unit is `{}` but its keyset {} at {mint} is in `{}`",
                crate::text::sanitize(&unit.to_string()),
                p.keyset_id,
                set.unit
            )));
        }
        let key = set.keys.amount_key(p.amount).ok_or_else(|| {
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
