//! Cashu payment tokens: decoding `cashuA` (V3) and `cashuB` (V4) tokens
//! with cdk, and showing them redacted (amount, unit, mint) so a token,
//! which is money, never lands in a log or a table by accident.

use std::fmt;
use std::str::FromStr;

use cdk::nuts::Token;
use serde::Serialize;

use crate::error::{Error, Result};

/// Largest token accepted, in bytes of its text (32 KiB). The token rides
/// in the job request's `payment` tag, and public relays cap whole events:
/// strfry (damus and most public relays) at 64 KiB by default,
/// nostr-rs-relay at 128 KiB. Half of the smallest common cap leaves room
/// for the rest of the event (arguments, environment, secrets) and still
/// fits ~200 V4 proofs, while any amount up to 2^64 needs at most 64. A
/// bigger token would be journaled and then refused by every relay.
pub const MAX_TOKEN_BYTES: usize = 32 * 1024;

/// Check a mint URL: `http://` or `https://` with a host, nothing else (no
/// `file:`, `ftp:`, `javascript:`; no spaces or control characters). Returns
/// it trimmed. Used for `--mint` flags and for the mint a token names.
pub fn parse_mint_url(s: &str) -> std::result::Result<String, String> {
    let t = s.trim();
    let shown = crate::text::clip(t, 120);
    if t.is_empty() {
        return Err("the mint URL is empty".into());
    }
    if t.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "mint URL `{shown}` holds spaces or control characters"
        ));
    }
    let url = url::Url::parse(t).map_err(|e| format!("`{shown}` is not a mint URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "mint URL `{shown}` is not http(s): mints are reached over http:// or https:// only"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("mint URL `{shown}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "mint URL `{shown}` carries a user name or password"
        ));
    }
    Ok(t.to_string())
}

/// Check one proof's amount offline: never zero. Whether the amount is a
/// denomination the mint signs (usually a power of two, but cdk and NUT-02
/// allow other keyset amounts) is checked against the mint's keysets in
/// [`crate::wallet::check_token`].
fn check_amount(a: u64) -> Result<()> {
    if a == 0 {
        return Err(Error::input(
            "the payment token holds a proof of amount 0 (edited or broken token)",
        ));
    }
    Ok(())
}

/// What jobctl knows about a token once decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Total value of the proofs.
    pub amount: u64,
    /// Currency unit (`sat` when the token does not say).
    pub unit: String,
    /// The mint that issued it.
    pub mint: String,
    /// `A` for V3, `B` for V4.
    pub version: char,
    /// Number of proofs.
    pub proofs: usize,
}

/// A decoded token: the original string (kept verbatim for the event) and
/// its summary. `Display` and `Debug` never show the token itself.
#[derive(Clone)]
pub struct PaymentToken {
    raw: String,
    info: TokenInfo,
}

impl PaymentToken {
    /// Decode and validate a token to pay with. Surrounding whitespace is
    /// trimmed; a token over [`MAX_TOKEN_BYTES`] is refused, since no
    /// common relay would carry the job request.
    pub fn parse(s: &str) -> Result<Self> {
        Self::decode(s, MAX_TOKEN_BYTES)
    }

    /// The same checks without the size limit, for tokens that go into
    /// the wallet rather than into an event (`wallet receive`, a worker's
    /// change): refusing those would strand money.
    pub fn parse_any_size(s: &str) -> Result<Self> {
        Self::decode(s, usize::MAX)
    }

    fn decode(s: &str, max_bytes: usize) -> Result<Self> {
        let raw = s.trim();
        if raw.is_empty() {
            return Err(Error::input("the payment token is empty"));
        }
        if !raw.starts_with("cashuA") && !raw.starts_with("cashuB") {
            return Err(Error::input(
                "the payment token must start with cashuA or cashuB",
            ));
        }
        if raw.len() > max_bytes {
            return Err(Error::input(format!(
                "the payment token is {} bytes, over the limit of {} KiB (relays refuse events that big); \
                 swap it for one with fewer proofs (`jobctl wallet receive` then `wallet send`)",
                raw.len(),
                MAX_TOKEN_BYTES / 1024
            )));
        }
        let token = Token::from_str(raw).map_err(|e| {
            Error::input(format!(
                "the payment token is malformed: {}",
                crate::text::clip(&e.to_string(), 200)
            ))
        })?;
        let amounts: Vec<u64> = match &token {
            Token::TokenV3(t) => t
                .token
                .iter()
                .flat_map(|t| t.proofs.iter().map(|p| u64::from(p.amount)))
                .collect(),
            Token::TokenV4(t) => t
                .token
                .iter()
                .flat_map(|t| t.proofs.iter().map(|p| u64::from(p.amount)))
                .collect(),
        };
        for a in &amounts {
            check_amount(*a)?;
        }
        amounts
            .iter()
            .try_fold(0u64, |acc, a| acc.checked_add(*a))
            .ok_or_else(|| Error::input("the payment token's amounts add up past 2^64"))?;
        let amount = token.value().map_err(|e| {
            Error::input(format!(
                "the payment token's amount is invalid: {}",
                crate::text::clip(&e.to_string(), 200)
            ))
        })?;
        let mint = token.mint_url().map_err(|_| {
            Error::input("the payment token names no mint or several mints; use one mint per token")
        })?;
        let mint = parse_mint_url(&mint.to_string())
            .map_err(|e| Error::input(format!("the payment token's mint: {e}")))?;
        let proofs = amounts.len();
        if proofs == 0 || u64::from(amount) == 0 {
            return Err(Error::input("the payment token holds no value"));
        }
        let unit = token
            .unit()
            .map(|u| u.to_string())
            .unwrap_or_else(|| "sat".to_string());
        Ok(PaymentToken {
            info: TokenInfo {
                amount: amount.into(),
                unit,
                mint,
                version: if raw.starts_with("cashuA") { 'A' } else { 'B' },
                proofs,
            },
            raw: raw.to_string(),
        })
    }

    /// The token string itself; only for the event's `payment` tag and for
    /// commands where the user asked for the token.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// Amount, unit, mint.
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// The NUT-11 locktime, when the token is P2PK-locked with one.
    pub fn locktime(&self) -> Option<u64> {
        Token::from_str(&self.raw)
            .ok()?
            .locktimes()
            .ok()?
            .into_iter()
            .max()
    }

    /// Whether any proof carries spending conditions (NUT-10/11).
    pub fn is_locked(&self) -> bool {
        Token::from_str(&self.raw)
            .ok()
            .and_then(|t| t.spending_conditions().ok())
            .is_some_and(|c| !c.is_empty())
    }

    /// The redacted form, e.g. `cashuA…(100 sat @ https://mint.example)`.
    pub fn redacted(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for PaymentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cashu{}…({} {} @ {})",
            self.info.version,
            self.info.amount,
            crate::text::sanitize(&self.info.unit),
            crate::text::sanitize(&self.info.mint)
        )
    }
}

impl fmt::Debug for PaymentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentToken({self})")
    }
}

/// Redact any token-looking string for display, without decoding it.
pub fn redact_str(s: &str) -> String {
    match PaymentToken::parse(s) {
        Ok(t) => t.redacted(),
        Err(_) => {
            let prefix: String = s.chars().take(6).collect();
            format!("{}…(undecodable)", crate::text::sanitize(&prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdk::mint_url::MintUrl;
    use cdk::nuts::{CurrencyUnit, Id, Proof, PublicKey};
    use cdk::secret::Secret;
    use cdk::Amount;

    fn token(amounts: &[u64]) -> Token {
        token_of(amounts, "http://127.0.0.1:3338")
    }

    /// A token of made-up proofs (never valid at a mint) of `amounts`.
    fn token_of(amounts: &[u64], mint: &str) -> Token {
        let c = PublicKey::from_hex(
            "02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2",
        )
        .expect("point");
        let id = Id::from_str("009a1f293253e41e").expect("id");
        let proofs = amounts
            .iter()
            .map(|a| Proof::new(Amount::from(*a), id, Secret::generate(), c))
            .collect();
        Token::new(
            MintUrl::from_str(mint).expect("url"),
            proofs,
            None,
            CurrencyUnit::Sat,
        )
    }

    #[test]
    fn decodes_v3_and_v4() {
        let t = token(&[64, 32, 4]);
        let v4 = PaymentToken::parse(&t.to_string()).expect("v4");
        assert_eq!(v4.info().amount, 100);
        assert_eq!(v4.info().unit, "sat");
        assert_eq!(v4.info().version, 'B');
        let v3 = PaymentToken::parse(&t.to_v3_string()).expect("v3");
        assert_eq!(v3.info().amount, 100);
        assert_eq!(v3.info().version, 'A');
        assert!(v3.info().mint.starts_with("http://127.0.0.1:3338"));
    }

    #[test]
    fn display_and_debug_never_show_the_token() {
        let s = token(&[8]).to_string();
        let t = PaymentToken::parse(&s).expect("token");
        assert!(!t.to_string().contains(&s[6..20]));
        assert!(!format!("{t:?}").contains(&s[6..20]));
        assert_eq!(t.redacted(), "cashuB…(8 sat @ http://127.0.0.1:3338)");
    }

    fn token_at(amounts: &[u64], mint: &str) -> String {
        token_of(amounts, mint).to_string()
    }

    #[test]
    fn mint_urls_are_http_only() {
        assert!(parse_mint_url(" https://mint.example/ ").is_ok());
        assert!(parse_mint_url("http://127.0.0.1:3338").is_ok());
        for bad in [
            "",
            "ftp://x",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "ws://x",
            "http://",
            "mint.example",
            "http://u:p@mint.example",
            "http://mint.example/\x1b[2J",
        ] {
            assert!(parse_mint_url(bad).is_err(), "{bad}");
        }
        let e = PaymentToken::parse(&token_at(&[8], "file:///etc/passwd"));
        assert!(matches!(e, Err(Error::Input(m)) if m.contains("not http(s)")));
    }

    #[test]
    fn amounts_and_size_are_checked() {
        let m = "http://127.0.0.1:3338";
        assert!(PaymentToken::parse(&token_at(&[1, 2, 1 << 40], m)).is_ok());
        assert!(PaymentToken::parse(&token_at(&[3, 21], m)).is_ok());
        for bad in [&[0u64][..], &[8, 0], &[1 << 63, 1 << 63], &[u64::MAX, 1]] {
            assert!(PaymentToken::parse(&token_at(bad, m)).is_err(), "{bad:?}");
        }
        let big = token_at(&[1; 400], m);
        assert!(big.len() > MAX_TOKEN_BYTES);
        assert!(matches!(PaymentToken::parse(&big), Err(Error::Input(_))));
        assert_eq!(
            PaymentToken::parse_any_size(&big)
                .map(|t| t.info().proofs)
                .ok(),
            Some(400)
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "cashu",
            "cashuAnot-base64!!",
            "cashuBAAAA",
            "hello",
            "cashuC123",
        ] {
            assert!(PaymentToken::parse(bad).is_err(), "{bad}");
        }
    }
}
