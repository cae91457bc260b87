//! `jobctl wallet balance`: spendable balance per mint and unit.

use jobctl::error::{exit, Result};
use jobctl::wallet::{self, Balance};

use super::check_summary;
use crate::cli::{render, runtime, to_json, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let b = runtime()?.block_on(async {
        let w = ctx.wallet().await?;
        // A dead operation may have left proofs listed that the mint has
        // spent: recover first (bounded) when it did.
        let mut journal = ctx.existing_journal()?;
        for r in w
            .recover_if_needed(journal.as_mut(), wallet::RECOVERY_TIMEOUT)
            .await?
        {
            if r.changed() {
                ctx.say(check_summary(&r));
            }
        }
        w.balances().await
    })?;
    if a.json {
        ctx.print(&to_json(&b)?)?;
    } else {
        ctx.say(table(&b));
        let total: u64 = b.iter().filter(|x| x.unit == "sat").map(|x| x.amount).sum();
        ctx.print(&total.to_string())?;
    }
    Ok(exit::OK)
}

/// The balance table; "held at the mint" only shows when a mint holds some.
fn table(b: &[Balance]) -> String {
    let held = b.iter().any(|x| x.held > 0);
    let mut head = vec!["mint", "unit", "balance", "sent, not yet redeemed"];
    if held {
        head.push("held at the mint");
    }
    let mut t = render::table(&head, render::stderr_color());
    for x in b {
        let mut row = vec![
            x.mint.clone(),
            x.unit.clone(),
            x.amount.to_string(),
            x.pending.to_string(),
        ];
        if held {
            row.push(x.held.to_string());
        }
        t.add_row(row);
    }
    t.to_string()
}
