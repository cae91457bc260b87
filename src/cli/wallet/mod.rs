//! `jobctl wallet ...`: the local Cashu wallet, one file per verb
//! (balance, mints, receive, send, mint, pay, check), each with its flags
//! beside its `run()`. Shared here: the verb enum and the one-line
//! rendering of what a reconcile fixed.

use clap::Subcommand;
use jobctl::error::Result;
use jobctl::wallet::{Fix, Reconciled};

use super::Ctx;

mod balance;
mod check;
mod mint;
mod mints;
mod pay;
mod receive;
mod send;

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Spendable balance per mint and unit (plus amounts sent but not yet redeemed).
    Balance(balance::Args),
    /// Mints this wallet has used.
    Mints(mints::Args),
    /// Redeem a token into the wallet (`-` or absent reads stdin).
    Receive(receive::Args),
    /// Take AMOUNT sat out of the wallet as a token, printed on stdout.
    Send(send::Args),
    /// Buy AMOUNT sat of ecash at a mint over Lightning: prints the invoice,
    /// waits for payment, claims the proofs.
    Mint(mint::Args),
    /// Pay a Lightning invoice with ecash (melt).
    Pay(pay::Args),
    /// Reconcile the wallet with its mints and report what was fixed:
    /// finish or roll back operations a crash or kill cut off, mark proofs
    /// the mint says are spent, release reserved proofs of dead operations,
    /// and take back tokens made but never journaled or handed out.
    Check(check::Args),
}

/// Run one `wallet` verb.
pub fn run(ctx: &Ctx, cmd: WalletCommand) -> Result<i32> {
    match cmd {
        WalletCommand::Balance(a) => balance::run(ctx, a),
        WalletCommand::Mints(a) => mints::run(ctx, a),
        WalletCommand::Receive(a) => receive::run(ctx, a),
        WalletCommand::Send(a) => send::run(ctx, a),
        WalletCommand::Mint(a) => mint::run(ctx, a),
        WalletCommand::Pay(a) => pay::run(ctx, a),
        WalletCommand::Check(a) => check::run(ctx, a),
    }
}

/// The deadline of a verb that talks to a mint: `--timeout`, else the
/// config's `timeouts.mint`.
fn mint_deadline(ctx: &Ctx, timeout: Option<&str>) -> Result<jobctl::deadline::Deadline> {
    let default = match timeout {
        Some(_) => std::time::Duration::ZERO,
        None => ctx.config()?.mint_timeout,
    };
    ctx.start_deadline(timeout, default)
}

/// One line per mint for `wallet check` (and `wallet balance` when it
/// recovered something).
pub(crate) fn check_summary(r: &Reconciled) -> String {
    let parts: Vec<String> = r.fixes().into_iter().map(fix_phrase).collect();
    if parts.is_empty() {
        format!("{}: in line with the mint, nothing to fix", r.mint)
    } else {
        format!("{}: {}", r.mint, parts.join("; "))
    }
}

fn fix_phrase(f: Fix) -> String {
    match f {
        Fix::Recovered(n) => format!("{n} interrupted operation(s) completed"),
        Fix::RolledBack(n) => format!("{n} rolled back"),
        Fix::StaleSwapsDropped(n) => format!("{n} swap(s) the mint never executed dropped"),
        Fix::MarkedSpent(a) => {
            format!("{a} sat listed as spendable were spent at the mint (no longer counted)")
        }
        Fix::Released(a) => format!("{a} sat reserved by dead operations are spendable again"),
        Fix::HeldAtMint(a) => format!(
            "{a} sat held: the mint has them pending (a swap cut off mid-way); checked again next time"
        ),
        Fix::ReclaimedSends(n, a) => {
            format!("{n} token(s) never journaled or handed out taken back ({a} sat)")
        }
        Fix::LeftPending(n) => format!("{n} operation(s) left for a later check"),
        Fix::LockedOrphans(a) => format!("{a} sat sit in proofs locked to someone else"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_summary_names_each_fix_in_order_or_says_nothing_to_fix() {
        let mut r = Reconciled {
            mint: "http://m".into(),
            ..Default::default()
        };
        assert_eq!(
            check_summary(&r),
            "http://m: in line with the mint, nothing to fix"
        );
        r.rolled_back = 1;
        r.reclaimed_sends = 2;
        r.reclaimed_amount = 21;
        r.locked_orphans = 4;
        assert_eq!(
            check_summary(&r),
            "http://m: 1 rolled back; 2 token(s) never journaled or handed out taken back (21 sat); \
             4 sat sit in proofs locked to someone else"
        );
    }
}
