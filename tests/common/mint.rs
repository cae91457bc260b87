//! A real cdk mint (fake Lightning backend) served by cdk-axum on
//! 127.0.0.1:0, on its own thread and runtime so tests can block on the
//! CLI while it serves; and a worker-side wallet for scripted workers.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cdk::mint::{MintBuilder, MintMeltLimits, UnitConfig};
use cdk::nuts::nut00::KnownMethod;
use cdk::nuts::{CurrencyUnit, PaymentMethod};
use cdk::types::{FeeReserve, QuoteTTL};
use cdk::wallet::{ReceiveOptions, SendOptions, Wallet};
use cdk::Amount;
use cdk_fake_wallet::FakeWallet;

use super::RT;

async fn start(input_fee_ppk: u64) -> (String, Arc<cdk::Mint>, tokio::task::JoinHandle<()>) {
    let db = Arc::new(cdk_sqlite::mint::memory::empty().await.expect("mint db"));
    let mut builder = MintBuilder::new(db.clone())
        .with_name("jobctl test mint".to_string())
        .with_description("in-process fake-Lightning mint".to_string());
    builder
        .configure_unit(
            CurrencyUnit::Sat,
            UnitConfig {
                amounts: (0..32).map(|i| 2_u64.pow(i)).collect(),
                input_fee_ppk,
            },
        )
        .expect("unit");
    let fake = FakeWallet::new(
        FeeReserve {
            min_fee_reserve: 1.into(),
            percent_fee_reserve: 0.0,
        },
        HashMap::default(),
        HashSet::default(),
        0,
        CurrencyUnit::Sat,
    );
    builder
        .add_payment_processor(
            CurrencyUnit::Sat,
            PaymentMethod::Known(KnownMethod::Bolt11),
            MintMeltLimits::new(1, 1_000_000),
            Arc::new(fake),
        )
        .await
        .expect("processor");
    let mint = Arc::new(
        builder
            .build_with_seed(db.clone(), &[7u8; 64])
            .await
            .expect("mint"),
    );
    mint.set_quote_ttl(QuoteTTL::new(3600, 3600))
        .await
        .expect("ttl");
    mint.start().await.expect("start");
    let router = cdk_axum::create_mint_router(mint.clone(), vec!["bolt11".to_string()])
        .await
        .expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), mint, server)
}

/// The mint, running until dropped.
pub struct TestMint {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestMint {
    pub fn start() -> Self {
        Self::with_input_fee(0)
    }

    /// A mint charging `ppk` parts per thousand of a sat per input proof
    /// (NUT-02), rounded up per transaction.
    pub fn with_input_fee(ppk: u64) -> Self {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("mint runtime");
            rt.block_on(async move {
                let (url, mint, server) = start(ppk).await;
                url_tx.send(url).expect("url");
                let _ = stop_rx.await;
                server.abort();
                let _ = mint.stop().await;
            });
        });
        let url = url_rx.recv().expect("mint url");
        TestMint {
            url,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for TestMint {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A wallet for a scripted worker (in-memory store), driven from tests.
pub struct TestWallet {
    wallet: Wallet,
}

impl TestWallet {
    pub fn new(mint: &str) -> Self {
        let wallet = RT.block_on(async {
            let store = cdk_sqlite::WalletSqliteDatabase::new(":memory:")
                .await
                .expect("store");
            let mut seed = [0u8; 64];
            seed[..32].copy_from_slice(&cdk::nuts::SecretKey::generate().to_secret_bytes());
            cdk::wallet::WalletBuilder::new()
                .mint_url(cdk::mint_url::MintUrl::from_str(mint).expect("url"))
                .unit(CurrencyUnit::Sat)
                .localstore(Arc::new(store))
                .seed(seed)
                .without_rate_limiting()
                .build()
                .expect("wallet")
        });
        TestWallet { wallet }
    }

    /// Redeem a token, signing locked proofs with `keys` (nostr secret keys).
    pub fn receive(&self, token: &str, keys: &[&nostr_sdk::SecretKey]) -> Result<u64, String> {
        let keys = keys
            .iter()
            .map(|k| cdk::nuts::SecretKey::from_slice(k.as_secret_bytes()).expect("key"))
            .collect();
        RT.block_on(self.wallet.receive(
            token,
            ReceiveOptions {
                p2pk_signing_keys: keys,
                ..Default::default()
            },
        ))
        .map(u64::from)
        .map_err(|e| e.to_string())
    }

    /// A plain token of `amount`.
    pub fn send(&self, amount: u64) -> String {
        RT.block_on(async {
            let p = self
                .wallet
                .prepare_send(Amount::from(amount), SendOptions::default())
                .await
                .expect("prepare send");
            p.confirm(None).await.expect("send").to_string()
        })
    }

    /// NUT-07 states of a token's proofs: (unspent sum, spent sum).
    pub fn token_state(&self, token: &str) -> (u64, u64) {
        use cdk::nuts::nut00::ProofsMethods;
        RT.block_on(async {
            let t = cdk::nuts::Token::from_str(token).expect("token");
            let infos: Vec<cdk::nuts::KeySetInfo> = self
                .wallet
                .keysets(cdk::wallet::types::KeysetLoadPolicy::CacheThenNetwork)
                .await
                .expect("keysets")
                .into_iter()
                .map(|ks| cdk::nuts::KeySetInfo {
                    id: ks.id,
                    unit: ks.unit,
                    active: ks.active.unwrap_or(false),
                    input_fee_ppk: ks.input_fee_ppk,
                    final_expiry: ks.final_expiry,
                })
                .collect();
            let proofs = t.proofs(&infos).expect("proofs");
            let ys = proofs.ys().expect("ys");
            let states = self
                .wallet
                .mint_connector()
                .post_check_state(cdk::nuts::CheckStateRequest { ys })
                .await
                .expect("check state")
                .states;
            let mut unspent = 0;
            let mut spent = 0;
            for (p, s) in proofs.iter().zip(states) {
                let a: u64 = p.amount.into();
                if s.state == cdk::nuts::State::Spent {
                    spent += a;
                } else {
                    unspent += a;
                }
            }
            (unspent, spent)
        })
    }

    pub fn balance(&self) -> u64 {
        RT.block_on(self.wallet.total_balance())
            .expect("balance")
            .into()
    }
}
