//! `cancel`: cancel one of your jobs. The decision and both requests
//! (NIP-09 deletion and Loom kind 5102) are [`jobctl::cancel`]'s; this
//! file resolves the flags and renders.

use clap::Args;

use crate::cli::render::{self, short_id};
use jobctl::cancel::{self, CancelRequest, Cancelled};
use jobctl::error::{exit, Error, Result};
use jobctl::protocol::JobRef;
use jobctl::relays;

use super::rerun::show_notices;
use super::{relays_for, require_relays, runtime, Ctx};

pub fn run(ctx: &Ctx, a: CancelArgs) -> Result<i32> {
    let cfg = ctx.config()?;
    let deadline = ctx.start_deadline(a.read.timeout.as_deref(), cfg.query_timeout)?;
    let r = JobRef::parse(&a.job).map_err(Error::input)?;
    let mut urls = relays_for(&cfg, &a.read.relays)?;
    let hints: Vec<_> = r
        .relays
        .iter()
        .filter(|u| !urls.contains(u))
        .cloned()
        .collect();
    urls.extend(hints);
    require_relays(&urls)?;
    let key = ctx.key(&cfg)?;
    let mut journal = ctx.existing_journal()?;
    let stored = journal
        .as_ref()
        .map(|j| j.get(&r.id))
        .transpose()?
        .flatten();
    let req = CancelRequest {
        job: r.id,
        stored: stored.as_ref(),
        force: a.force,
        reason: &a.reason,
    };
    let mut notices = Vec::new();
    let sent = runtime()?.block_on(cancel::send(&key.keys, &urls, req, deadline, &mut notices));
    show_notices(ctx, &notices);
    let c = sent?;
    if let Some(j) = journal.as_mut() {
        cancel::record(j, &c)?;
    }
    print_cancel(ctx, &c, a.json)
}

/// JSON, or the relay table and a summary; the deletion's id on stdout.
/// Exit 1 when no relay accepted the deletion.
fn print_cancel(ctx: &Ctx, c: &Cancelled, json: bool) -> Result<i32> {
    if json {
        let v = serde_json::json!({
            "job": c.job.to_hex(), "deletion": c.deletion.id.to_hex(), "event": c.deletion,
            "relays": c.relays, "accepted": c.accepted,
            "loom_cancel": c.loom.id.to_hex(), "loom_event": c.loom, "loom_accepted": c.loom_accepted,
        });
        ctx.print(&v.to_string())?;
    } else {
        ctx.say(render::relay_table(&c.relays, render::stderr_color()));
        ctx.say(format!(
            "cancel of job {} sent: accepted by {}/{} relays (the worker skips it if it has not started)",
            short_id(&c.job.to_hex()),
            c.accepted,
            c.relays.len()
        ));
        ctx.print(&c.deletion.id.to_hex())?;
    }
    if c.accepted == 0 {
        ctx.error(&format!(
            "no relay accepted the cancel request ({})",
            relays::failure_summary(&c.relays)
        ));
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job to cancel (one of yours).
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Send the cancel even if the job already finished.
    #[arg(long)]
    pub force: bool,

    /// Reason, sent as the deletion request's content.
    #[arg(
        long,
        default_value = "cancelled by the requester",
        value_name = "TEXT"
    )]
    pub reason: String,

    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: super::ReadArgs,
}
