//! Cashu payment tokens: decoding `cashuA` (V3) and `cashuB` (V4) tokens
//! with cdk, and showing them redacted (amount, unit, mint) so a token,
//! which is money, never lands in a log or a table by accident.

use std::fmt;
use std::str::FromStr;

use cdk::nuts::Token;
use serde::Serialize;

use crate::error::{Error, Result};

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
    /// Decode and validate a token string. Surrounding whitespace is trimmed.
    pub fn parse(s: &str) -> Result<Self> {
        let raw = s.trim();
        if raw.is_empty() {
            return Err(Error::input("the payment token is empty"));
        }
        if !raw.starts_with("cashuA") && !raw.starts_with("cashuB") {
            return Err(Error::input(
                "the payment token must start with cashuA or cashuB",
            ));
        }
        let token = Token::from_str(raw)
            .map_err(|e| Error::input(format!("the payment token is malformed: {e}")))?;
        let amount = token
            .value()
            .map_err(|e| Error::input(format!("the payment token's amount is invalid: {e}")))?;
        let mint = token.mint_url().map_err(|_| {
            Error::input("the payment token names no mint or several mints; use one mint per token")
        })?;
        let proofs = match &token {
            Token::TokenV3(t) => t.token.iter().map(|t| t.proofs.len()).sum(),
            Token::TokenV4(t) => t.token.iter().map(|t| t.proofs.len()).sum(),
        };
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
                mint: mint.to_string(),
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
            self.info.version, self.info.amount, self.info.unit, self.info.mint
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
            format!("{prefix}…(undecodable)")
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
            MintUrl::from_str("http://127.0.0.1:3338").expect("url"),
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
