//! Paying for jobs end to end with a real cdk mint (fake Lightning) in
//! process, real relays, and a scripted worker with its own wallet.

mod common;

use std::time::Duration;

use common::mint::{TestMint, TestWallet};
use common::*;
use nostr_sdk::prelude::*;

fn payment_of(e: &Event) -> String {
    tags(e)
        .into_iter()
        .find(|t| t[0] == "payment")
        .expect("payment tag")[1]
        .clone()
}

/// Fund the wallet; the invoice is shown and the amount printed.
fn fund_shown(env: &TestEnv, mint: &TestMint, amount: u64) {
    let out = fund(env, &mint.url, amount);
    assert_eq!(stdout(&out), amount.to_string());
    assert!(
        stderr(&out).contains("lnbc"),
        "the invoice is shown: {}",
        stderr(&out)
    );
}

#[test]
fn amount_from_the_wallet_change_back_and_reclaim_once() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let worker_wallet = TestWallet::new(&mint.url);
    w.send(&[&relay], &[w.ad("w1", Some(&mint.url), now())]);
    fund_shown(&env, &mint, 1000);
    assert_eq!(balance(&env), (1000, 0));

    // No --mint: the worker's advertised mint with enough balance is used.
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--amount", "100", "--", "-j", "build"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out);
    let ev = &relay
        .events()
        .into_iter()
        .find(|e| e.id.to_hex() == id)
        .unwrap();
    let token = payment_of(ev);
    let info = jobctl::payment::PaymentToken::parse(&token).unwrap();
    assert_eq!(info.info().amount, 100);
    assert!(info.info().mint.starts_with(&mint.url));
    assert!(!stderr(&out).contains(&token), "token redacted on stderr");
    // The journal has the token; the wallet shows it sent, not spent.
    assert_eq!(env.journal_jobs()[0].3.as_deref(), Some(token.as_str()));
    assert_eq!(balance(&env), (900, 100));

    // The worker swaps the payment and returns 40 as change.
    assert_eq!(worker_wallet.receive(&token, &[]), Ok(100));
    let change = worker_wallet.send(40);
    let me = env.keys.public_key().to_hex();
    let spec = ResultSpec {
        change: Some(change),
        duration: Some(60.0),
        ..Default::default()
    };
    w.send(&[&relay], &[w.result(&id, &me, &spec)]);

    let out = env
        .cmd()
        .args(["reclaim", &id, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{id} claimed 40"));
    assert_eq!(balance(&env).0, 940);
    // Twice: one credit.
    let out = env
        .cmd()
        .args(["reclaim", &id, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already reclaimed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(balance(&env).0, 940);
    // --all finds nothing more to do.
    let out = env
        .cmd()
        .args(["reclaim", "--all", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(balance(&env).0, 940);
}

#[test]
fn spent_token_is_refused_before_publishing() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    fund_shown(&env, &mint, 200);
    let out = env.cmd().args(["wallet", "send", "50"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = stdout(&out);
    assert!(token.starts_with("cashuB"));
    // Someone redeems it first.
    assert_eq!(TestWallet::new(&mint.url).receive(&token, &[]), Ok(50));
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already spent"), "{}", stderr(&out));
    assert!(relay.events().is_empty());
    assert!(env.journal_jobs().is_empty());

    // An unspent one passes the check.
    let out = env.cmd().args(["wallet", "send", "20"]).output().unwrap();
    let good = stdout(&out);
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--token", &good])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn locked_payment_only_the_worker_can_redeem_and_the_user_gets_it_back_after_the_locktime() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    w.send(&[&relay], &[w.ad("w1", Some(&mint.url), now())]);
    fund_shown(&env, &mint, 500);
    let lock = |arg: &str, after: &str| {
        let out = env
            .rerun(&w.hex(), &[&relay.url])
            .args([
                "--amount",
                "30",
                "--lock",
                "--refund-after",
                after,
                "--",
                arg,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let id = stdout(&out);
        let ev = relay
            .events()
            .into_iter()
            .find(|e| e.id.to_hex() == id)
            .unwrap();
        (id, payment_of(&ev))
    };
    // Job A: a thief cannot redeem it; the worker can.
    let (_a, token_a) = lock("a", "72h");
    let thief = Keys::generate();
    assert!(TestWallet::new(&mint.url)
        .receive(&token_a, &[thief.secret_key()])
        .is_err());
    assert!(TestWallet::new(&mint.url).receive(&token_a, &[]).is_err());
    assert_eq!(
        TestWallet::new(&mint.url).receive(&token_a, &[w.keys.secret_key()]),
        Ok(30)
    );

    // Job B: the worker never takes it and the job fails; after the
    // locktime the user's key takes it back.
    let (b, _token_b) = lock("b", "3s");
    let me = env.keys.public_key().to_hex();
    w.send(
        &[&relay],
        &[w.status(&b, &me, "failed", "no capacity", now())],
    );
    let out = env
        .cmd()
        .args(["reclaim", &b, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("locked to the worker"),
        "{}",
        stderr(&out)
    );
    let before = balance(&env).0;
    std::thread::sleep(Duration::from_secs(4));
    let out = env
        .cmd()
        .args(["reclaim", &b, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{b} claimed 30"));
    assert_eq!(balance(&env).0, before + 30);
}

#[test]
fn failed_job_without_change_returns_the_payment_or_says_it_is_spent() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let me = env.keys.public_key().to_hex();
    fund_shown(&env, &mint, 300);
    let pay = |arg: &str| {
        let out = env
            .rerun(&w.hex(), &[&relay.url])
            .args(["--amount", "100", "--mint", &mint.url, "--", arg])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    // The worker never swapped it: the whole payment comes back.
    let untouched = pay("untouched");
    w.send(
        &[&relay],
        &[w.result(
            &untouched,
            &me,
            &ResultSpec {
                exit_code: 1,
                ..Default::default()
            },
        )],
    );
    // The worker swapped it and failed without change: nothing to recover.
    let swallowed = pay("swallowed");
    let ev = relay
        .events()
        .into_iter()
        .find(|e| e.id.to_hex() == swallowed)
        .unwrap();
    assert_eq!(
        TestWallet::new(&mint.url).receive(&payment_of(&ev), &[]),
        Ok(100)
    );
    w.send(
        &[&relay],
        &[w.result(
            &swallowed,
            &me,
            &ResultSpec {
                exit_code: 1,
                ..Default::default()
            },
        )],
    );
    // Still running: not eligible.
    let running = pay("running");
    w.send(&[&relay], &[w.status(&running, &me, "running", "", now())]);

    let out = env
        .cmd()
        .args(["reclaim", "--all", "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let get = |id: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|o| o["job"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(get(&untouched)["result"], "claimed");
    assert_eq!(get(&untouched)["amount"], 100);
    assert_eq!(get(&swallowed)["result"], "spent");
    assert!(get(&swallowed)["message"]
        .as_str()
        .unwrap()
        .contains("100 sat not recovered"));
    assert_eq!(get(&running)["result"], "skipped");
    assert_eq!(balance(&env).0, 100);
    let out = env.cmd().args(["stats", "--json"]).output().unwrap();
    let o = &json(&out)["overall"];
    assert_eq!(o["paid"]["sat"], 300);
    assert_eq!(o["reclaimed"]["sat"], 100);
    assert_eq!(o["lost"]["sat"], 100);
    // Final answers are never attempted again.
    let out = env
        .cmd()
        .args(["reclaim", "--all", "--json", "--relay", &relay.url])
        .output()
        .unwrap();
    let v = json(&out);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["result"] == "skipped"));
}

#[test]
fn mint_choice_price_and_accepted_mints() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    w.send(
        &[&relay],
        &[w.ad("picky", Some("https://another.mint.example"), now())],
    );
    fund_shown(&env, &mint, 100);
    // No mint both accepted and funded: both sides are listed.
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--amount", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("another.mint.example") && err.contains("100 sat at"),
        "{err}"
    );
    // A token from a mint the worker does not list: warning, or error with --strict.
    let token = {
        let out = env.cmd().args(["wallet", "send", "10"]).output().unwrap();
        stdout(&out)
    };
    let run = |extra: &[&str]| {
        env.rerun(&w.hex(), &[&relay.url])
            .args(["--token", &token])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--strict"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not list"));
    assert!(relay
        .query(Filter::new().kind(Kind::Custom(5100)))
        .is_empty());
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning:") && stderr(&out).contains("does not list"));

    // The worker's price (1 sat/s) times the duration over --max-price: refused.
    let out = env
        .rerun_unpaid(&w.hex(), &[&relay.url])
        .args(["--max-price", "50", "--duration", "120", "--", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("more than --max-price 50"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_mint_that_is_down() {
    let env = TestEnv::new();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    let dead = ClosedPort::new();
    let token = token_v4(&[8], &dead.url.replace("ws://", "http://"));
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--token", &token, "--require-check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--require-check"));
    assert!(relay.events().is_empty());
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("could not check"));
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--token", &token, "--no-check", "--", "again"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("could not check"));
    // Minting from a dead mint is a clear error.
    let out = env
        .cmd()
        .args([
            "wallet",
            "mint",
            "10",
            "--mint",
            &dead.url.replace("ws://", "http://"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: "));
}

#[test]
fn a_given_token_is_swapped_into_a_locked_one_and_invoices_are_paid() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let relay = TestRelay::start();
    let w = ScriptedWorker::new();
    fund_shown(&env, &mint, 200);
    let token = {
        let out = env.cmd().args(["wallet", "send", "25"]).output().unwrap();
        stdout(&out)
    };
    let out = env
        .rerun(&w.hex(), &[&relay.url])
        .args(["--token", &token, "--lock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sent = payment_of(&relay.events()[0]);
    assert_ne!(sent, token, "the bearer token was swapped");
    let locked = jobctl::payment::PaymentToken::parse(&sent).unwrap();
    assert!(locked.is_locked() && locked.locktime().is_some());
    assert_eq!(locked.info().amount, 25);
    assert!(TestWallet::new(&mint.url).receive(&sent, &[]).is_err());
    assert_eq!(
        TestWallet::new(&mint.url).receive(&sent, &[w.keys.secret_key()]),
        Ok(25)
    );

    // Paying a Lightning invoice (melt); the fake backend charges 1 sat fee.
    let invoice = cdk_fake_wallet::create_fake_invoice(20_000, "jobctl".to_string()).to_string();
    let before = balance(&env).0;
    let out = env
        .cmd()
        .args(["wallet", "pay", &invoice])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "20");
    assert!(balance(&env).0 <= before - 20);
    let out = env
        .cmd()
        .args(["wallet", "mints", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out).as_array().unwrap().len(), 1);
}

#[test]
fn a_reclaimed_unpublished_job_is_never_republished() {
    let env = TestEnv::new();
    let mint = TestMint::start();
    let closed = ClosedPort::new();
    let w = ScriptedWorker::new();
    fund_shown(&env, &mint, 50);
    let out = env
        .rerun(&w.hex(), &[&closed.url])
        .args(["--amount", "20", "--mint", &mint.url, "--timeout", "2s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let id = stdout(&out);
    let out = env.cmd().args(["reclaim", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{id} claimed 20"));
    assert_eq!(balance(&env).0, 50);
    let relay = TestRelay::start();
    let out = env
        .cmd()
        .args(["republish", "--all", "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(relay.events().is_empty());
    let out = env
        .cmd()
        .args(["republish", &id, "--relay", &relay.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("reclaimed"));
    assert!(relay.events().is_empty());
}
