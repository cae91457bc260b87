//! `jobctl wallet pay`: pay a Lightning invoice with ecash (melt).

use jobctl::error::{exit, Result};

use super::mint_deadline;
use crate::cli::{runtime, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The BOLT11 invoice.
    bolt11: String,
    /// Mint to pay from [default: the one with the largest balance].
    #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
    mint: Option<String>,
    /// Bound on the whole command, every mint call included
    /// [default: config timeouts.mint, else 30s].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let deadline = mint_deadline(ctx, a.timeout.as_deref())?;
    let (mint, amount, fee) = runtime()?.block_on(async {
        let w = ctx.wallet().await?;
        let mint = match a.mint {
            Some(m) => m,
            None => w.richest_mint(1).await?,
        };
        let (amount, fee) = deadline
            .bound(&format!("waiting for mint {mint}"), w.pay(&mint, &a.bolt11))
            .await?;
        Ok::<_, jobctl::Error>((mint, amount, fee))
    })?;
    ctx.say(format!("paid {amount} sat (fee {fee} sat) from {mint}"));
    ctx.print(&format!("{amount}"))?;
    Ok(exit::OK)
}
