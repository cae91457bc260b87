//! The payment plan of a new job: whether it needs paying at all (a
//! worker's freelist), the price check against the worker's
//! advertisement, the choice of mint, the NUT-11 lock to the worker, the
//! NUT-07 pre-flight check of a token handed in, and making a token from
//! the local wallet. Runs before anything is signed; every refusal is bad
//! input (exit 2) and nothing is published. Warnings and notes come back
//! as [`Notices`]; nothing here prints.

use std::time::Duration;

use nostr_sdk::prelude::*;

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::follow::{self, AdLookup};
use crate::journal::Journal;
use crate::keys::FileLock;
use crate::notice::{Notice, Notices};
use crate::payment::PaymentToken;
use crate::protocol::WorkerAd;
use crate::settings::Settings;
use crate::wallet::{self, LocalWallet, Lock, TokenFormat, TokenState};

/// Bound on fetching the worker's advertisement when it only feeds warnings.
const ADVISORY_AD_TIMEOUT: Duration = Duration::from_secs(2);

/// Bound on one mint round trip in pre-flight checks.
const MINT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How the job is to be paid (`rerun`'s payment flags, resolved).
#[derive(Debug, Clone, Default)]
pub struct PaymentFlags {
    /// `--amount`: make a token of this many sat from the wallet.
    pub amount: Option<u64>,
    /// `--mint`: the mint to pay from with `--amount`.
    pub mint: Option<String>,
    /// `--max-price`.
    pub max_price: Option<u64>,
    /// `--duration` (seconds), for the price.
    pub duration: Option<u64>,
    /// `--lock`: lock the payment to the worker (NUT-11).
    pub lock: bool,
    /// `--refund-after`: the lock's locktime, e.g. `72h`.
    pub refund_after: String,
    /// `--no-check`: skip the NUT-07 pre-flight of a token handed in.
    pub no_check: bool,
    /// `--require-check`: fail when the token's mint cannot be reached.
    pub require_check: bool,
    /// `--strict`: fail when the worker does not list the mint.
    pub strict: bool,
    /// How tokens the wallet makes are written.
    pub token_format: TokenFormat,
}

/// Who pays whom, where, and by when.
#[derive(Debug, Clone, Copy)]
pub struct Payer<'a> {
    /// Opens the wallet and the (optional) key for reading ads.
    pub settings: &'a Settings,
    /// The worker paid.
    pub worker: PublicKey,
    /// The user's key: the refund path of a locked payment.
    pub refund: PublicKey,
    /// Relays to read the worker's advertisement from.
    pub relays: &'a [RelayUrl],
    /// The dispatch's one relay pool (its lookups and its publish share
    /// the connections).
    pub client: &'a Client,
    /// The command's one deadline (the plan takes shares of it).
    pub deadline: Deadline,
    /// Now, for the lock's locktime.
    pub now: Timestamp,
}

/// What the plan leaves behind, also when it fails half-way.
#[derive(Debug, Default)]
pub struct PaymentOut {
    /// Warnings and notes for the user, in order.
    pub notices: Notices,
    /// The wallet's lock, taken right before the wallet makes a token: the
    /// caller holds it until the job carrying the token is journaled.
    pub wallet_lock: Option<FileLock>,
}

/// The payment for a new job: a checked token handed in (`given`), or a
/// fresh token from the wallet (`--amount`), optionally locked to the
/// worker. A token the wallet makes is recorded in `journal` (`sends`)
/// before the mint is asked; the caller journals the job (which marks it
/// `journaled`) while still holding `out.wallet_lock`.
pub async fn plan(
    p: &Payer<'_>,
    f: &PaymentFlags,
    given: Option<PaymentToken>,
    journal: Option<&mut Journal>,
    out: &mut PaymentOut,
) -> Result<Option<PaymentToken>> {
    let ad = advertisement(p, f, given.is_some()).await?;
    if let Some(max) = f.max_price {
        check_price(ad.as_ref(), max, f.duration)?;
    }
    let lock = lock_for(p, f)?;
    if let Some(amount) = f.amount {
        return from_wallet(p, f, amount, ad.as_ref(), lock, journal, out)
            .await
            .map(Some);
    }
    let Some(token) = given else {
        return Ok(None);
    };
    // A token handed in: is it still good, and can the worker use it?
    if !f.no_check {
        preflight(p, &token, f, &mut out.notices).await?;
    }
    check_token_listed(ad.as_ref(), &token, f, &mut out.notices)?;
    let Some(lock) = lock else {
        return Ok(Some(token));
    };
    // Swap the bearer token into one only the worker can spend, minding
    // the mint's input fees.
    let w = open_wallet(p, f, out).await?;
    let r = p
        .deadline
        .bound(
            &format!("waiting for mint {}", token.info().mint),
            w.relock(&token, lock, journal),
        )
        .await?;
    if r.locked < r.given {
        out.notices.push(Notice::Info(format!(
            "note: mint {} charges fees: the token's {} sat swapped into the wallet as {} sat; {} sat are locked to the worker, {} sat stay in the wallet",
            token.info().mint,
            r.given,
            r.received,
            r.locked,
            r.received.saturating_sub(r.locked + r.sent.fee)
        )));
    }
    PaymentToken::parse(&r.sent.token).map(Some)
}

/// Whether paying needs the local wallet (a token made with `--amount`,
/// or swapped into a `--lock`ed one): [`plan`] then runs before the job
/// is signed. Otherwise the job is paid with the token handed in (or not
/// at all) and [`gate`] runs beside the journal commit.
pub fn uses_wallet(f: &PaymentFlags) -> bool {
    f.amount.is_some() || f.lock
}

/// Whether the worker's advertisement decides if a job paid with a token
/// handed in may go (`--strict`, `--max-price`), rather than only feeding
/// a warning ([`advise`]).
fn ad_gates(f: &PaymentFlags) -> bool {
    f.strict || f.max_price.is_some()
}

/// What must pass before a job paid with `token` handed in (or unpaid,
/// `None`) is sent: the NUT-07 spent-check at the token's mint and, with
/// `--strict` or `--max-price`, the worker's advertisement, at once.
/// Not for [`uses_wallet`] payments.
pub async fn gate(
    p: &Payer<'_>,
    f: &PaymentFlags,
    token: Option<&PaymentToken>,
    notices: &mut Notices,
) -> Result<()> {
    let mut checked = Notices::new();
    let check = async {
        match token {
            Some(t) if !f.no_check => preflight(p, t, f, &mut checked).await,
            _ => Ok(()),
        }
    };
    let mut listed = Notices::new();
    let ad = async {
        if !ad_gates(f) {
            return Ok(());
        }
        let ad = advertisement(p, f, token.is_some()).await?;
        if let Some(max) = f.max_price {
            check_price(ad.as_ref(), max, f.duration)?;
        }
        match token {
            Some(t) => check_token_listed(ad.as_ref(), t, f, &mut listed),
            None => Ok(()),
        }
    };
    let (check, ad) = tokio::join!(check, ad);
    notices.extend(checked);
    notices.extend(listed);
    check.and(ad)
}

/// Whether [`gate`] can refuse a job paid with `token` (a spent-check to
/// make, or an advertisement that decides).
pub fn gate_may_refuse(f: &PaymentFlags, token: Option<&PaymentToken>) -> bool {
    (token.is_some() && !f.no_check) || ad_gates(f)
}

/// The worker's advertisement read beside the commit and the publish of a
/// job paid with `token` handed in, for the warning it may give (a mint it
/// does not list); nothing when [`gate`] read it already.
pub async fn advise(p: &Payer<'_>, f: &PaymentFlags, token: Option<&PaymentToken>) -> Notices {
    let mut notices = Notices::new();
    let Some(token) = token.filter(|_| !ad_gates(f)) else {
        return notices;
    };
    if let Ok(ad) = advertisement(p, f, true).await {
        // Not --strict here: an unlisted mint is a warning, never an error.
        let _ = check_token_listed(ad.as_ref(), token, f, &mut notices);
    }
    notices
}

/// [`check_listed`] for a token handed in.
fn check_token_listed(
    ad: Option<&WorkerAd>,
    token: &PaymentToken,
    f: &PaymentFlags,
    notices: &mut Notices,
) -> Result<()> {
    let Some(ad) = ad else { return Ok(()) };
    let mint = &token.info().mint;
    let what = format!("the token's mint {mint}");
    check_listed(ad, mint, &what, f.strict, notices)
}

/// The worker's advertisement, when the plan needs it: required to pick a
/// mint or check a price (a lookup cut short is then an error, never "the
/// worker has no ad"); for a token handed in it only feeds a warning, so
/// a slow relay may not hold the job up long.
async fn advertisement(
    p: &Payer<'_>,
    f: &PaymentFlags,
    token_given: bool,
) -> Result<Option<WorkerAd>> {
    let required = (f.amount.is_some() && f.mint.is_none()) || f.max_price.is_some();
    let wanted = required || f.amount.is_some() || token_given;
    // Shares of the command's one deadline: the publish needs the rest.
    let timeout = if required {
        p.deadline.share(2)
    } else {
        p.deadline.share(3).min(ADVISORY_AD_TIMEOUT)
    };
    let ad = if wanted && !p.relays.is_empty() {
        follow::worker_ad(p.client, p.relays, p.worker, timeout).await
    } else {
        AdLookup::Missing
    };
    let needed_for = if f.max_price.is_some() {
        "for --max-price"
    } else {
        "to pick a mint (or pass --mint URL)"
    };
    if let Some(e) = ad
        .cut_short(p.deadline.total(), needed_for)
        .filter(|_| required)
    {
        return Err(e);
    }
    Ok(ad.into_ad())
}

/// `--max-price`: the worker's cheapest advertised rate times the
/// expected run time (`--duration`, else its min_duration, else 60 s).
pub fn check_price(ad: Option<&WorkerAd>, max: u64, duration: Option<u64>) -> Result<()> {
    let Some(ad) = ad else {
        return Err(Error::input(
            "--max-price: the worker has no advertisement to read its price from",
        ));
    };
    let secs = duration.or(ad.min_duration).unwrap_or(60);
    if let Some(p) = ad.prices.iter().map(|p| p.rate).reduce(f64::min) {
        let price = (p * secs as f64).ceil() as u64;
        if price > max {
            return Err(Error::input(format!(
                "the worker charges {p} sat/{} x {secs} s = {price} sat, more than --max-price {max}",
                ad.prices[0].period
            )));
        }
    }
    Ok(())
}

/// The NUT-11 lock of a `--lock` payment: the worker spends it, the user
/// takes it back after `--refund-after`.
fn lock_for(p: &Payer<'_>, f: &PaymentFlags) -> Result<Option<Lock>> {
    if !f.lock {
        return Ok(None);
    }
    let after = crate::config::parse_duration(&f.refund_after)
        .map_err(|e| Error::input(format!("--refund-after: {e}")))?;
    Ok(Some(Lock {
        worker: p.worker,
        refund: p.refund,
        locktime: p.now.as_secs() + after.as_secs().max(1),
    }))
}

/// The wallet, writing tokens in the wanted format, with its lock taken
/// (held by the caller until the job carrying the token is journaled).
async fn open_wallet(p: &Payer<'_>, f: &PaymentFlags, out: &mut PaymentOut) -> Result<LocalWallet> {
    let mut w = p.settings.wallet().await?;
    w.set_token_format(f.token_format);
    out.wallet_lock = Some(wallet::lock(w.dir(), wallet::LOCK_WAIT)?);
    Ok(w)
}

/// `--amount`: a fresh token from the wallet, at a mint the worker accepts.
async fn from_wallet(
    p: &Payer<'_>,
    f: &PaymentFlags,
    amount: u64,
    ad: Option<&WorkerAd>,
    lock: Option<Lock>,
    journal: Option<&mut Journal>,
    out: &mut PaymentOut,
) -> Result<PaymentToken> {
    if amount == 0 {
        return Err(Error::input("--amount must be at least 1 sat"));
    }
    let w = open_wallet(p, f, out).await?;
    let mint = pick_mint(&w, f, amount, ad, &mut out.notices).await?;
    let sent = p
        .deadline
        .bound(
            &format!("waiting for mint {mint}"),
            w.send_logged(&mint, amount, lock, journal, "job"),
        )
        .await?;
    PaymentToken::parse(&sent.token)
}

/// `--mint` (checked against the ad), else the accepted mint holding the
/// most, at least `amount`.
async fn pick_mint(
    w: &LocalWallet,
    f: &PaymentFlags,
    amount: u64,
    ad: Option<&WorkerAd>,
    notices: &mut Notices,
) -> Result<String> {
    if let Some(m) = &f.mint {
        if let Some(ad) = ad {
            check_listed(ad, m, &format!("mint {m}"), f.strict, notices)?;
        }
        return Ok(m.clone());
    }
    let Some(ad) = ad.filter(|ad| !ad.prices.is_empty()) else {
        return Err(Error::input(
            "the worker advertises no mint to pay at: pass --mint URL",
        ));
    };
    let mut best: Option<(String, u64)> = None;
    for p in &ad.prices {
        let have = w.balance_at(&p.mint).await?;
        if have >= amount && best.as_ref().is_none_or(|(_, h)| have > *h) {
            best = Some((p.mint.clone(), have));
        }
    }
    if let Some((m, _)) = best {
        return Ok(m);
    }
    let have = holdings(w).await?;
    Err(Error::input(format!(
        "no mint both accepted by the worker and holding {amount} sat: worker accepts {}; wallet holds {}",
        accepted(ad),
        if have.is_empty() { "nothing".to_string() } else { have.join(", ") }
    )))
}

/// `AMOUNT UNIT at MINT` for each balance.
async fn holdings(w: &LocalWallet) -> Result<Vec<String>> {
    Ok(w.balances()
        .await?
        .iter()
        .map(|b| format!("{} {} at {}", b.amount, b.unit, b.mint))
        .collect())
}

/// A mint the worker's ad does not list: an error with `--strict`, else
/// a warning. `what` names the mint in the message.
fn check_listed(
    ad: &WorkerAd,
    mint: &str,
    what: &str,
    strict: bool,
    notices: &mut Notices,
) -> Result<()> {
    if ad.prices.is_empty() || ad.accepts_mint(mint) {
        return Ok(());
    }
    let msg = format!(
        "the worker does not list {what} (it accepts: {})",
        accepted(ad)
    );
    if strict {
        return Err(Error::input(msg));
    }
    notices.push(Notice::Warning(msg));
    Ok(())
}

/// The NUT-07 pre-flight: a spent or pending token is refused; a mint
/// that cannot be reached is a warning (an error with --require-check).
async fn preflight(
    p: &Payer<'_>,
    token: &PaymentToken,
    f: &PaymentFlags,
    notices: &mut Notices,
) -> Result<()> {
    let timeout = p.deadline.share(2).min(MINT_CHECK_TIMEOUT);
    let keysets = p.settings.keyset_cache_dir();
    match wallet::check_token(token, timeout, Some(&keysets)).await {
        Ok(TokenState::Unspent) => Ok(()),
        Ok(TokenState::Spent) => Err(Error::input(format!(
            "the payment token {token} is already spent at its mint"
        ))),
        Ok(TokenState::Pending) => Err(Error::input(format!(
            "the payment token {token} is pending at its mint (being spent)"
        ))),
        Err(Error::Input(m)) => Err(Error::Input(m)),
        Err(e) if f.require_check => Err(Error::input(format!(
            "cannot check the token with its mint (--require-check): {e}"
        ))),
        Err(e) => {
            notices.push(Notice::Warning(format!(
                "could not check the token with its mint: {e}"
            )));
            Ok(())
        }
    }
}

/// The mints a worker's ad lists, for messages.
pub fn accepted(ad: &WorkerAd) -> String {
    ad.prices
        .iter()
        .map(|p| p.mint.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `me` may send `worker` a job without paying (its freelist holds
/// the key), looked up through `client` within `budget`; `None` when it
/// may not or the lookup did not finish.
pub async fn free_reason(
    client: &Client,
    me: PublicKey,
    relays: &[RelayUrl],
    worker: PublicKey,
    budget: Deadline,
) -> Option<String> {
    let ad = follow::worker_ad(client, relays, worker, budget.share(2)).await;
    match ad.ad() {
        Some(ad) => follow::free_for(client, relays, ad, &me, &budget).await,
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ad listing `mint` at `rate` sat a second.
    fn ad(rate: &str, mint: &str) -> WorkerAd {
        let tag = Tag::parse(["price", "second", rate, "sat", mint]).unwrap();
        let ev = EventBuilder::new(Kind::Custom(crate::protocol::KIND_WORKER_AD), "{}")
            .tags([tag])
            .sign_with_keys(&Keys::generate())
            .unwrap();
        WorkerAd::from_event(&ev).expect("an ad")
    }

    #[test]
    fn no_ad_means_no_price_to_check() {
        let e = check_price(None, 10, None).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--max-price: the worker has no advertisement"));
    }

    #[test]
    fn the_price_is_rate_times_duration() {
        let ad = ad("0.5", "https://m.example");
        assert!(check_price(Some(&ad), 30, None).is_ok());
        let e = check_price(Some(&ad), 29, None).unwrap_err();
        assert!(
            e.to_string().contains("= 30 sat, more than --max-price 29"),
            "{e}"
        );
        assert!(check_price(Some(&ad), 5, Some(10)).is_ok());
    }

    #[test]
    fn an_unlisted_mint_warns_or_with_strict_fails() {
        let ad = ad("1", "https://m.example");
        let mut n = Notices::new();
        check_listed(&ad, "https://m.example", "mint x", false, &mut n).unwrap();
        assert!(n.is_empty());
        check_listed(&ad, "https://other.example", "mint x", false, &mut n).unwrap();
        assert_eq!(
            n,
            vec![Notice::Warning(
                "the worker does not list mint x (it accepts: https://m.example)".into()
            )]
        );
        assert!(check_listed(&ad, "https://other.example", "mint x", true, &mut n).is_err());
    }
}
