//! How tokens the wallet makes are written: V3 (`cashuA`, full keyset
//! ids) or V4 (`cashuB`), and the keyset look-up that V3 needs.

use super::*;

/// How a token jobctl makes is written: `cashuA` (V3, JSON, proofs with
/// full keyset ids) or `cashuB` (V4, CBOR, short keyset ids). Today's
/// clients (cashu-ts 3.6 in Budabit) cannot decode offline a `cashuB`
/// token whose proofs carry short ids of version-01 keysets, so V3 is the
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenFormat {
    /// `cashuA...` with full keyset ids.
    #[default]
    V3,
    /// `cashuB...` as cdk writes it.
    V4,
}

impl std::str::FromStr for TokenFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cashua" | "a" | "v3" => Ok(TokenFormat::V3),
            "cashub" | "b" | "v4" => Ok(TokenFormat::V4),
            _ => Err(format!("`{s}` is not a token format (cashuA or cashuB)")),
        }
    }
}

/// A mint's keysets as the infos token decoding and fee sums take.
pub(super) fn keyset_infos(keysets: Vec<cdk::nuts::KeySet>) -> Vec<KeySetInfo> {
    keysets
        .into_iter()
        .map(|ks| KeySetInfo {
            id: ks.id,
            unit: ks.unit,
            active: ks.active.unwrap_or(false),
            input_fee_ppk: ks.input_fee_ppk,
            final_expiry: ks.final_expiry,
        })
        .collect()
}

/// Write `token` in `format`. For V3 every proof carries its keyset's
/// full id, looked up in the keysets the wallet holds for `w`'s mint (it
/// just used them, so this is local; bounded by [`KEYSET_LOOKUP`] all the
/// same). If they cannot be had, the token stays V4, which every reader
/// decodes with the mint's help: the token is money and is never dropped.
pub async fn encode_token(w: &Wallet, token: &Token, format: TokenFormat) -> String {
    if format == TokenFormat::V4 {
        return token.to_string();
    }
    let looked_up =
        tokio::time::timeout(KEYSET_LOOKUP, w.keysets(KeysetLoadPolicy::CacheThenNetwork)).await;
    let infos: Vec<KeySetInfo> = match looked_up {
        Ok(Ok(k)) => keyset_infos(k),
        _ => Vec::new(),
    };
    full_id_v3(token, &infos).unwrap_or_else(|| {
        tracing::warn!("keysets of the token's mint unknown: token left as cashuB");
        token.to_string()
    })
}

/// Bound on looking up keysets to write a V3 token.
const KEYSET_LOOKUP: Duration = Duration::from_secs(5);

/// `token` as V3 with full keyset ids, given the mint's keysets.
pub fn full_id_v3(token: &Token, keysets: &[KeySetInfo]) -> Option<String> {
    use cdk::nuts::nut00::token::TokenV3Token;
    use cdk::nuts::nut00::{ProofV3, TokenV3};
    use cdk::nuts::nut02::ShortKeysetId;
    let mint = token.mint_url().ok()?;
    let proofs = token.proofs(keysets).ok()?;
    if proofs.is_empty() {
        return None;
    }
    let mut v3 = Vec::with_capacity(proofs.len());
    for p in proofs {
        let id = ShortKeysetId::from_bytes(&p.keyset_id.to_bytes()).ok()?;
        v3.push(ProofV3 {
            amount: p.amount,
            keyset_id: id,
            secret: p.secret,
            c: p.c,
            witness: p.witness,
            dleq: p.dleq,
        });
    }
    let t = TokenV3 {
        token: vec![TokenV3Token { mint, proofs: v3 }],
        memo: token.memo().clone(),
        unit: token.unit(),
    };
    Some(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdk::nuts::{Id, Proof};

    fn token_with(id: &str) -> (Token, Vec<KeySetInfo>) {
        let id = Id::from_str(id).expect("id");
        let c = cdk::nuts::PublicKey::from_hex(
            "02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2",
        )
        .expect("point");
        let proofs = vec![
            Proof::new(Amount::from(4), id, cdk::secret::Secret::generate(), c),
            Proof::new(Amount::from(1), id, cdk::secret::Secret::generate(), c),
        ];
        let t = Token::new(
            MintUrl::from_str("http://127.0.0.1:3338").expect("url"),
            proofs,
            None,
            CurrencyUnit::Sat,
        );
        let info = KeySetInfo {
            id,
            unit: CurrencyUnit::Sat,
            active: true,
            input_fee_ppk: 0,
            final_expiry: None,
        };
        (t, vec![info])
    }

    #[test]
    fn v3_tokens_carry_full_keyset_ids_and_decode_back() {
        for id in [
            "009a1f293253e41e",
            "01adc013fa9d85171586660abab27579888611659d357bc86bc09cb26eee8bc035",
        ] {
            let (t, keysets) = token_with(id);
            let v3 = full_id_v3(&t, &keysets).expect("encodes");
            assert!(v3.starts_with("cashuA"));
            let back = cdk::nuts::TokenV3::from_str(&v3).expect("decodes");
            for p in &back.token[0].proofs {
                assert_eq!(p.keyset_id.to_string(), id);
            }
            // Same value, same proofs, readable by jobctl's own parser.
            let parsed = PaymentToken::parse(&v3).expect("parses");
            assert_eq!(parsed.info().amount, 5);
            assert_eq!(parsed.info().version, 'A');
            let again = Token::from_str(&v3).expect("token");
            assert_eq!(again.proofs(&keysets).expect("proofs").len(), 2);
        }
        // Without the mint's keysets a version-01 short id cannot be
        // widened: no V3 (the caller keeps V4).
        let (t, _) =
            token_with("01adc013fa9d85171586660abab27579888611659d357bc86bc09cb26eee8bc035");
        assert!(full_id_v3(&t, &[]).is_none());
    }

    #[test]
    fn token_formats_parse() {
        assert_eq!("cashuA".parse::<TokenFormat>(), Ok(TokenFormat::V3));
        assert_eq!("cashuB".parse::<TokenFormat>(), Ok(TokenFormat::V4));
        assert!("cashuC".parse::<TokenFormat>().is_err());
    }
}
