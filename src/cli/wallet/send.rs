//! `jobctl wallet send`: take AMOUNT sat out of the wallet as a token.

use jobctl::error::{exit, Error, Result};
use jobctl::wallet;

use super::mint_deadline;
use crate::cli::{runtime, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Amount in sat.
    amount: u64,
    /// Mint to send from [default: the one with the largest balance].
    #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
    mint: Option<String>,
    /// Bound on the whole command, every mint call included
    /// [default: config timeouts.mint, else 30s].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let deadline = mint_deadline(ctx, a.timeout.as_deref())?;
    runtime()?.block_on(async {
        let w = ctx.wallet().await?;
        let amount = a.amount;
        if amount == 0 {
            return Err(Error::input("the amount must be at least 1 sat"));
        }
        let mint = match a.mint {
            Some(m) => m,
            None => w.richest_mint(amount).await?,
        };
        // Recorded in the journal before the mint is asked, so a token cut
        // off before it reached stdout is taken back; the wallet's lock is
        // held until it is marked delivered, so no other process takes it
        // back meanwhile.
        let _lock = wallet::lock(w.dir(), wallet::LOCK_WAIT)?;
        let mut journal = ctx.journal()?;
        let sent = deadline
            .bound(
                &format!("waiting for mint {mint}"),
                w.send_logged(&mint, amount, None, Some(&mut journal), "wallet-send"),
            )
            .await?;
        ctx.say(format!(
            "sent {amount} sat from {mint}; the token below is money: keep it safe"
        ));
        ctx.print(&sent.token)?;
        journal.send_state(
            &sent.op_id,
            jobctl::journal::SendState::Delivered,
            "printed on stdout",
        )?;
        Ok(exit::OK)
    })
}
