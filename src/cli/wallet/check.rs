//! `jobctl wallet check`: reconcile the wallet with its mints and report
//! what was fixed.

use jobctl::error::{exit, Result};

use super::check_summary;
use crate::cli::{render, runtime, to_json, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this mint [default: every mint in the wallet].
    #[arg(long, value_name = "URL", value_parser = jobctl::payment::parse_mint_url)]
    mint: Option<String>,
    /// Bound on the whole check, every mint included.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    timeout: String,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32> {
    let deadline = ctx.start_deadline(Some(&a.timeout), std::time::Duration::ZERO)?;
    let reports = runtime()?.block_on(async {
        let w = ctx.wallet().await?;
        let mut journal = ctx.existing_journal()?;
        let mints = match a.mint {
            Some(m) => vec![m],
            None => w.mints().await,
        };
        // One --timeout for the whole check, every mint included.
        let mut reports = Vec::new();
        for m in &mints {
            reports.push(
                w.reconcile(m, journal.as_mut(), deadline.remaining())
                    .await?,
            );
        }
        Ok::<_, jobctl::Error>(reports)
    })?;
    let problems = reports.iter().any(|r| !r.problems.is_empty());
    if a.json {
        ctx.print(&to_json(&reports)?)?;
    } else {
        for r in &reports {
            ctx.say(check_summary(r));
            for p in &r.problems {
                render::print_warning(&format!("{}: {p}", r.mint));
            }
        }
        if reports.is_empty() {
            ctx.say("the wallet has no mints yet: nothing to check");
        }
        let fixed = reports.iter().filter(|r| r.changed()).count();
        ctx.print(&format!(
            "{} mint(s) checked, {fixed} with fixes",
            reports.len()
        ))?;
    }
    Ok(if problems { exit::FAILURE } else { exit::OK })
}
