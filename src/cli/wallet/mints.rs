//! `jobctl wallet mints`: the mints this wallet has used.

use jobctl::error::{exit, Result};

use crate::cli::{runtime, to_json, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let m =
        runtime()?.block_on(async { Ok::<_, jobctl::Error>(ctx.wallet().await?.mints().await) })?;
    if a.json {
        ctx.print(&to_json(&m)?)?;
    } else {
        for x in &m {
            ctx.print(x)?;
        }
    }
    Ok(exit::OK)
}
