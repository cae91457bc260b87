//! Cashu token fixtures: well-formed but unspendable tokens for the wire
//! format, and wallet helpers (`fund`, `balance`) that drive `jobctl wallet`
//! against a real mint.

use std::str::FromStr;

use super::{json, stderr, TestEnv};

/// A well-formed Cashu token (V4 `cashuB`) of `amounts` from `mint`. Its
/// proofs are not signed by any mint: good for the wire format, not for
/// spending.
pub fn token_v4(amounts: &[u64], mint: &str) -> String {
    fake_token(amounts, mint).to_string()
}

/// The same as a V3 `cashuA` token.
pub fn token_v3(amounts: &[u64], mint: &str) -> String {
    fake_token(amounts, mint).to_v3_string()
}

fn fake_token(amounts: &[u64], mint: &str) -> cdk::nuts::Token {
    use cdk::nuts::{CurrencyUnit, Id, Proof, PublicKey as CashuPk, Token};
    let c = CashuPk::from_hex("02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2")
        .expect("point");
    let id = Id::from_str("009a1f293253e41e").expect("id");
    let proofs = amounts
        .iter()
        .map(|a| {
            Proof::new(
                cdk::Amount::from(*a),
                id,
                cdk::secret::Secret::generate(),
                c,
            )
        })
        .collect();
    Token::new(
        cdk::mint_url::MintUrl::from_str(mint).expect("mint url"),
        proofs,
        None,
        CurrencyUnit::Sat,
    )
}

/// Fund `env`'s wallet with `amount` sat at `mint` (`wallet mint`, whose
/// fake Lightning backend pays the invoice); asserts success.
pub fn fund(env: &TestEnv, mint: &str, amount: u64) -> std::process::Output {
    let out = env
        .cmd()
        .args(["wallet", "mint", &amount.to_string(), "--mint", mint])
        .args(["--timeout", "30s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

/// (spendable, sent but not yet redeemed) over every mint of `env`'s wallet.
pub fn balance(env: &TestEnv) -> (u64, u64) {
    let (spendable, pending, _) = balance_held(env);
    (spendable, pending)
}

/// (spendable, sent but not yet redeemed, held: pending at the mint).
pub fn balance_held(env: &TestEnv) -> (u64, u64, u64) {
    let out = env
        .cmd()
        .args(["wallet", "balance", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let a = v.as_array().expect("an array of balances");
    let sum = |k: &str| a.iter().map(|b| b[k].as_u64().expect("a number")).sum();
    (sum("amount"), sum("pending"), sum("held"))
}

/// Decode a V4 token, change it, encode it again (edited-token tests).
pub fn edit_v4(token: &str, f: impl FnOnce(&mut cdk::nuts::TokenV4)) -> String {
    let cdk::nuts::Token::TokenV4(mut t) = cdk::nuts::Token::from_str(token).expect("token") else {
        panic!("not a V4 token");
    };
    f(&mut t);
    t.to_string()
}
