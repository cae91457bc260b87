//! `jobctl reclaim`: redeem into the wallet what jobs owe back. The
//! policy (which jobs, what kind) is [`jobctl::reclaim`]; this file
//! resolves the inputs, fetches the jobs' results, and renders outcomes.

use clap::Args;
use jobctl::error::{exit, Error, Result};
use jobctl::follow;
use jobctl::journal::JobRecord;
use jobctl::keys::SigningKey;
use jobctl::reclaim::{self, ClaimResult, Outcome};
use jobctl::relays;
use jobctl::state::JobTracker;
use jobctl::wallet::LocalWallet;
use nostr_sdk::prelude::*;

use super::{relays_for, runtime, to_json, Ctx};
use crate::cli::render::{self, short_id};

#[derive(Debug, Args)]
pub struct ReclaimArgs {
    /// Jobs to reclaim (journaled ones: the journal holds their tokens).
    #[arg(value_name = "JOB", required_unless_present = "all")]
    pub jobs: Vec<String>,

    /// Every eligible published job in the journal.
    #[arg(long, conflicts_with = "jobs")]
    pub all: bool,

    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: super::ReadArgs,
}

pub fn run(ctx: &Ctx, a: ReclaimArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let key = ctx.key(&cfg)?;
    let Some(mut journal) = ctx.existing_journal()? else {
        if a.all {
            ctx.say("nothing to reclaim: there is no journal yet");
            return Ok(exit::OK);
        }
        return Err(Error::input(
            "there is no journal yet, so no job to reclaim",
        ));
    };
    let records = reclaim::select(&journal, a.all, &a.jobs)?;
    let urls = relays_for(&cfg, &a.read.relays)?;
    let deadline = ctx.start_deadline(a.read.timeout.as_deref(), cfg.query_timeout)?;
    let outcomes = runtime()?.block_on(async {
        let trackers = trackers(&key, &urls, &records, deadline.share(2)).await;
        let w = ctx.wallet().await?;
        if a.all {
            take_back_unjournaled(ctx, &w, &mut journal, deadline.remaining()).await?;
        }
        let opts = reclaim::Options {
            all: a.all,
            now: ctx.now(),
            deadline,
            key: &key.keys,
            clock: render::clock,
        };
        reclaim::reclaim(&mut journal, &w, &records, trackers, opts).await
    })?;
    if a.json {
        ctx.print(&to_json(&outcomes)?)?;
    } else {
        render_outcomes(ctx, &outcomes)?;
    }
    let failed = outcomes.iter().any(|o| o.result == ClaimResult::Failed);
    Ok(if failed { exit::FAILURE } else { exit::OK })
}

/// The jobs' state on the relays (results carry the change), within
/// `wait`: half the deadline, the mint calls need the rest.
async fn trackers(
    key: &SigningKey,
    urls: &[RelayUrl],
    records: &[JobRecord],
    wait: std::time::Duration,
) -> Vec<JobTracker> {
    let ids: Vec<EventId> = records
        .iter()
        .filter_map(|r| EventId::from_hex(&r.id).ok())
        .collect();
    if urls.is_empty() || ids.is_empty() {
        return ids.iter().map(|id| JobTracker::new(*id)).collect();
    }
    let client = relays::reader(Some(&key.keys), urls, false).await;
    let (t, reach) = follow::load_jobs_reach(&client, urls, &ids, wait).await;
    relays::shutdown(&client).await;
    if !reach.complete() {
        render::print_warning(&format!(
            "results and change may be missing: {}",
            reach.describe()
        ));
    }
    t
}

/// `--all`: tokens made but never journaled or handed out come back too.
async fn take_back_unjournaled(
    ctx: &Ctx,
    w: &LocalWallet,
    journal: &mut jobctl::journal::Journal,
    wait: std::time::Duration,
) -> Result<()> {
    for r in w.reconcile_all(Some(journal), wait).await? {
        if r.reclaimed_sends > 0 {
            ctx.say(format!(
                "{}: took back {} token(s) never journaled ({} sat)",
                r.mint, r.reclaimed_sends, r.reclaimed_amount
            ));
        }
    }
    Ok(())
}

/// One `JOB RESULT AMOUNT` line per job on stdout, a table and the total
/// on stderr.
fn render_outcomes(ctx: &Ctx, outcomes: &[Outcome]) -> Result<()> {
    let mut t = render::table(
        &["job", "kind", "result", "amount", "detail"],
        render::stderr_color(),
    );
    for o in outcomes {
        t.add_row(vec![
            short_id(&o.job),
            o.kind
                .map_or_else(|| "-".into(), |k| k.as_str().to_string()),
            o.result.as_str().to_string(),
            o.amount.to_string(),
            render::one_line(&o.message),
        ]);
        ctx.print(&format!("{} {} {}", o.job, o.result.as_str(), o.amount))?;
    }
    ctx.say(t.to_string());
    let total: u64 = outcomes
        .iter()
        .filter(|o| o.result == ClaimResult::Claimed)
        .map(|o| o.amount)
        .sum();
    ctx.say(format!("reclaimed {total} sat into the wallet"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobctl::reclaim::ClaimKind;
    use jobctl::settings::{GlobalFlags, Settings};

    #[test]
    fn outcomes_are_data_lines_on_stdout_and_a_table_with_the_total_on_stderr() {
        let settings = Settings::resolve(GlobalFlags::default());
        let (ctx, out, err) = Ctx::for_test(settings, false, 1_700_000_000);
        let job = |n: char| n.to_string().repeat(64);
        let outcomes = vec![
            Outcome {
                job: job('a'),
                result: ClaimResult::Claimed,
                kind: Some(ClaimKind::Change),
                amount: 19,
                message: "19 sat credited from http://mint".into(),
            },
            Outcome {
                job: job('b'),
                result: ClaimResult::Skipped,
                kind: None,
                amount: 0,
                message: "unpaid job: nothing to reclaim".into(),
            },
        ];
        render_outcomes(&ctx, &outcomes).expect("renders");
        assert_eq!(
            out.text(),
            format!("{} claimed 19\n{} skipped 0\n", job('a'), job('b'))
        );
        let err = err.text();
        assert!(
            err.contains("change") && err.contains("unpaid job"),
            "{err}"
        );
        assert!(err.ends_with("reclaimed 19 sat into the wallet\n"), "{err}");
        assert_eq!(
            to_json(&outcomes).expect("json"),
            format!(
                "[{{\"job\":\"{}\",\"result\":\"claimed\",\"kind\":\"change\",\"amount\":19,\
                 \"message\":\"19 sat credited from http://mint\"}},{{\"job\":\"{}\",\
                 \"result\":\"skipped\",\"kind\":null,\"amount\":0,\
                 \"message\":\"unpaid job: nothing to reclaim\"}}]",
                job('a'),
                job('b')
            )
        );
    }
}
