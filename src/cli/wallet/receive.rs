//! `jobctl wallet receive`: redeem a token into the wallet.

use jobctl::error::{exit, Result};
use jobctl::payment::PaymentToken;

use super::mint_deadline;
use crate::cli::{read_stdin, runtime, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The token.
    token: Option<String>,
    /// Bound on the whole command, every mint call included
    /// [default: config timeouts.mint, else 30s].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let deadline = mint_deadline(ctx, a.timeout.as_deref())?;
    let raw = match a.token.as_deref() {
        None | Some("-") => read_stdin("the token")?,
        Some(t) => t.to_string(),
    };
    let amount = runtime()?.block_on(async {
        let w = ctx.wallet().await?;
        let t = PaymentToken::parse_any_size(&raw)?;
        let amount = deadline
            .bound(
                &format!("waiting for mint {}", t.info().mint),
                w.receive(t.expose(), vec![]),
            )
            .await?;
        ctx.say(format!(
            "received {amount} {} from {}",
            t.info().unit,
            t.info().mint
        ));
        Ok::<_, jobctl::Error>(amount)
    })?;
    ctx.print(&amount.to_string())?;
    Ok(exit::OK)
}
