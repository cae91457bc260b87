//! `jobctl wallet mint`: buy ecash at a mint over Lightning.

use jobctl::error::{exit, Error, Result};

use crate::cli::{render, runtime, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Amount in sat.
    amount: u64,
    /// The mint.
    #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
    mint: String,
    /// Bound on the whole command: the quote, waiting for the invoice
    /// to be paid, and claiming the proofs.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    timeout: String,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let deadline = ctx.start_deadline(Some(&a.timeout), std::time::Duration::ZERO)?;
    let (amount, mint) = (a.amount, a.mint);
    let got = runtime()?.block_on(async {
        let w = ctx.wallet().await?;
        if amount == 0 {
            return Err(Error::input("the amount must be at least 1 sat"));
        }
        let wait = deadline.remaining();
        deadline
            .bound(
                &format!("minting at {mint}"),
                w.mint(&mint, amount, wait, |invoice| {
                    // Shown even with --quiet: without it nothing can be minted.
                    eprintln!("pay this invoice to mint {amount} sat at {mint}:");
                    eprintln!("{}", render::sanitize(invoice));
                }),
            )
            .await
    })?;
    ctx.say(format!("minted {got} sat at {mint}"));
    ctx.print(&got.to_string())?;
    Ok(exit::OK)
}
