//! The payment step of `rerun`: making a
//! token from the wallet, locking it to the worker, and the pre-flight
//! checks (NUT-07 state at the mint, the worker's accepted mints, price).

use std::time::Duration;

use crate::cli::render;
use jobctl::config::Config;
use jobctl::error::{Error, Result};
use jobctl::follow::{self, AdLookup};
use jobctl::journal::Journal;
use jobctl::keys::SigningKey;
use jobctl::payment::PaymentToken;
use jobctl::protocol::WorkerAd;
use jobctl::relays;
use jobctl::wallet::{self, LocalWallet, Lock, TokenState};
use nostr_sdk::prelude::*;

use super::Ctx;
use crate::cli::RerunArgs;

/// Bound on fetching the worker's advertisement when it only feeds warnings.
const ADVISORY_AD_TIMEOUT: Duration = Duration::from_secs(2);

/// Bound on one mint round trip in pre-flight checks.
const MINT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The mint holding the most sat that can cover `amount` (or any, if 0).
// Unused since `wallet send`/`wallet pay` moved (they call
// `LocalWallet::richest_mint`); left for helper R1, who owns it.
#[allow(dead_code)]
async fn richest_mint(w: &LocalWallet, amount: u64) -> Result<String> {
    let balances = w.balances().await?;
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

/// The worker's newest advertisement, telling "it has none" from "the
/// relays did not answer in time".
async fn worker_ad(
    ctx: &Ctx,
    cfg: &Config,
    worker: PublicKey,
    relays: &[RelayUrl],
    timeout: Duration,
) -> Result<AdLookup> {
    let key = ctx.optional_key(cfg)?;
    let client = relays::reader(key.as_ref().map(|k| &k.keys), relays, false).await;
    let ad = follow::worker_ad(&client, relays, worker, timeout).await;
    relays::shutdown(&client).await;
    Ok(ad)
}

/// The format of tokens the wallet makes for a job: `--token-format`,
/// else the config's `token_format`, else V3 (`cashuA`).
fn token_format(cfg: &Config, a: &RerunArgs) -> wallet::TokenFormat {
    a.token_format.unwrap_or(cfg.token_format)
}

/// The payment for a new job: a checked `--token`, or a fresh token from
/// the wallet (`--amount`), optionally locked to the worker. Runs before
/// anything is signed; every refusal is exit 2 and nothing is published.
/// A token the wallet makes is recorded in `journal` (`sends`) before the
/// mint is asked; the caller journals the job (which marks it `journaled`)
/// while still holding the wallet lock.
#[allow(clippy::too_many_arguments)]
pub async fn payment(
    ctx: &Ctx,
    cfg: &Config,
    a: &RerunArgs,
    worker: PublicKey,
    key: &SigningKey,
    relays: &[RelayUrl],
    given: Option<PaymentToken>,
    mut journal: Option<&mut Journal>,
    wallet_lock: &mut Option<jobctl::keys::FileLock>,
) -> Result<Option<PaymentToken>> {
    // The ad is required to pick a mint or check a price; for a given token
    // it only feeds a warning, so a slow relay may not hold the job up long.
    let required = (a.amount.is_some() && a.mint.is_none()) || a.max_price.is_some();
    let wanted = required || a.amount.is_some() || given.is_some();
    // Shares of the command's one deadline: the publish needs the rest.
    let deadline = ctx.deadline();
    let ad_timeout = if required {
        deadline.share(2)
    } else {
        deadline.share(3).min(ADVISORY_AD_TIMEOUT)
    };
    let ad = if wanted && !relays.is_empty() {
        worker_ad(ctx, cfg, worker, relays, ad_timeout).await?
    } else {
        AdLookup::Missing
    };
    // A lookup cut short is "timed out", never "the worker has no ad".
    let needed_for = if a.max_price.is_some() {
        "for --max-price"
    } else {
        "to pick a mint (or pass --mint URL)"
    };
    if let Some(e) = ad
        .cut_short(deadline.total(), needed_for)
        .filter(|_| required)
    {
        return Err(e);
    }
    let ad = ad.into_ad();
    if let Some(max) = a.max_price {
        let Some(ad) = &ad else {
            return Err(Error::input(
                "--max-price: the worker has no advertisement to read its price from",
            ));
        };
        let secs = a.duration.or(ad.min_duration).unwrap_or(60);
        if let Some(p) = ad.prices.iter().map(|p| p.rate).reduce(f64::min) {
            let price = (p * secs as f64).ceil() as u64;
            if price > max {
                return Err(Error::input(format!(
                    "the worker charges {p} sat/{} x {secs} s = {price} sat, more than --max-price {max}",
                    ad.prices[0].period
                )));
            }
        }
    }
    let lock = if a.lock {
        let after = jobctl::config::parse_duration(&a.refund_after)
            .map_err(|e| Error::input(format!("--refund-after: {e}")))?;
        Some(Lock {
            worker,
            refund: key.keys.public_key(),
            locktime: Timestamp::now().as_secs() + after.as_secs().max(1),
        })
    } else {
        None
    };
    if let Some(amount) = a.amount {
        if amount == 0 {
            return Err(Error::input("--amount must be at least 1 sat"));
        }
        let mut w = ctx.wallet().await?;
        w.set_token_format(token_format(cfg, a));
        // Held by the caller until the job carrying the token is journaled.
        *wallet_lock = Some(wallet::lock(w.dir(), wallet::LOCK_WAIT)?);
        let mint = match (&a.mint, &ad) {
            (Some(m), Some(ad)) if !ad.prices.is_empty() && !ad.accepts_mint(m) => {
                let msg = format!(
                    "the worker does not list mint {m} (it accepts: {})",
                    accepted(ad)
                );
                if a.strict {
                    return Err(Error::input(msg));
                }
                render::print_warning(&msg);
                m.clone()
            }
            (Some(m), _) => m.clone(),
            (None, Some(ad)) if !ad.prices.is_empty() => {
                let mut best = None;
                for p in &ad.prices {
                    let have = w.balance_at(&p.mint).await.unwrap_or(0);
                    if have >= amount && best.as_ref().is_none_or(|(_, h)| have > *h) {
                        best = Some((p.mint.clone(), have));
                    }
                }
                match best {
                    Some((m, _)) => m,
                    None => {
                        let have: Vec<String> = w
                            .balances()
                            .await?
                            .iter()
                            .map(|b| format!("{} {} at {}", b.amount, b.unit, b.mint))
                            .collect();
                        return Err(Error::input(format!(
                            "no mint both accepted by the worker and holding {amount} sat: worker accepts {}; wallet holds {}",
                            accepted(ad),
                            if have.is_empty() { "nothing".to_string() } else { have.join(", ") }
                        )));
                    }
                }
            }
            (None, _) => {
                return Err(Error::input(
                    "the worker advertises no mint to pay at: pass --mint URL",
                ))
            }
        };
        let sent = deadline
            .bound(
                &format!("waiting for mint {mint}"),
                w.send_logged(&mint, amount, lock, journal.as_deref_mut(), "job"),
            )
            .await?;
        return PaymentToken::parse(&sent.token).map(Some);
    }
    let Some(token) = given else {
        return Ok(None);
    };
    // A token handed in: is it still good, and can the worker use it?
    if !a.no_check {
        match wallet::check_token(&token, deadline.share(2).min(MINT_CHECK_TIMEOUT)).await {
            Ok(TokenState::Unspent) => {}
            Ok(TokenState::Spent) => {
                return Err(Error::input(format!(
                    "the payment token {token} is already spent at its mint"
                )))
            }
            Ok(TokenState::Pending) => {
                return Err(Error::input(format!(
                    "the payment token {token} is pending at its mint (being spent)"
                )))
            }
            Err(Error::Input(m)) => return Err(Error::Input(m)),
            Err(e) if a.require_check => {
                return Err(Error::input(format!(
                    "cannot check the token with its mint (--require-check): {e}"
                )))
            }
            Err(e) => {
                render::print_warning(&format!("could not check the token with its mint: {e}"))
            }
        }
    }
    if let Some(ad) = &ad {
        if !ad.prices.is_empty() && !ad.accepts_mint(&token.info().mint) {
            let msg = format!(
                "the worker does not list the token's mint {} (it accepts: {})",
                token.info().mint,
                accepted(ad)
            );
            if a.strict {
                return Err(Error::input(msg));
            }
            render::print_warning(&msg);
        }
    }
    if let Some(lock) = lock {
        // Swap the bearer token into one only the worker can spend,
        // minding the mint's input fees.
        let mut w = ctx.wallet().await?;
        w.set_token_format(token_format(cfg, a));
        // Held by the caller until the job carrying the token is journaled.
        *wallet_lock = Some(wallet::lock(w.dir(), wallet::LOCK_WAIT)?);
        let r = deadline
            .bound(
                &format!("waiting for mint {}", token.info().mint),
                w.relock(&token, lock, journal),
            )
            .await?;
        if r.locked < r.given {
            ctx.say(format!(
                "note: mint {} charges fees: the token's {} sat swapped into the wallet as {} sat; {} sat are locked to the worker, {} sat stay in the wallet",
                token.info().mint,
                r.given,
                r.received,
                r.locked,
                r.received.saturating_sub(r.locked + r.sent.fee)
            ));
        }
        return PaymentToken::parse(&r.sent.token).map(Some);
    }
    Ok(Some(token))
}

fn accepted(ad: &WorkerAd) -> String {
    ad.prices
        .iter()
        .map(|p| p.mint.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
