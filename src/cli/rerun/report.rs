//! How `rerun` shows what happened: the dispatch report (JSON, or the
//! relay table, verdict and id), the "dispatching ..." line, and the
//! notices the library returns.

use crate::cli::render;
use jobctl::dispatch::{DispatchReport, JobSpec};
use jobctl::error::{exit, Result};
use jobctl::keys::npub;
use jobctl::notice::Notice;
use jobctl::relays;

use super::super::{to_json, Ctx};
use super::Base;

/// Show what a library decision wants the user to see: warnings always
/// (`warning: ...`), notes unless `--quiet`.
pub(crate) fn show_notices(ctx: &Ctx, notices: &[Notice]) {
    for n in notices {
        match n {
            Notice::Warning(w) => ctx.warn(w),
            Notice::Info(i) => ctx.say(i),
        }
    }
}

/// `dispatching `CMD` to worker NPUB with PAYMENT via N relay(s)`, and
/// ` + M from the worker's relay list` when its inbox adds relays.
pub(super) fn dispatching_line(
    spec: &JobSpec,
    relays: usize,
    inbox: usize,
    base: Option<&Base>,
) -> String {
    format!(
        "dispatching `{}` to worker {} with {} via {relays} relay(s){}{}",
        command_line(spec),
        npub(&spec.worker),
        payment_summary(spec),
        match inbox {
            0 => String::new(),
            n => format!(" + {n} from the worker's relay list"),
        },
        base.map(|b| format!(" (rerun of {})", render::short_id(&b.id.to_hex())))
            .unwrap_or_default()
    )
}

/// Print a dispatch report: JSON, or the table, summary and id.
pub(crate) fn print_report(ctx: &Ctx, report: &DispatchReport, json: bool) -> Result<i32> {
    print_report_of(ctx, report, json, None)
}

/// [`print_report`] of a workflow run's job: the run's id is printed
/// instead of the job's, and the JSON gains a `run` field.
pub(crate) fn print_report_of(
    ctx: &Ctx,
    report: &DispatchReport,
    json: bool,
    run: Option<&str>,
) -> Result<i32> {
    let color = render::stderr_color();
    if json {
        let text = match run {
            None => to_json(report)?,
            Some(run) => {
                let mut v = serde_json::to_value(report)
                    .map_err(|e| jobctl::Error::Runtime(format!("cannot encode JSON: {e}")))?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("run".into(), run.into());
                }
                to_json(&v)?
            }
        };
        ctx.print(&text)?;
        return Ok(if report.ok() { exit::OK } else { exit::FAILURE });
    }
    let tally = format!(
        "job {} accepted by {}/{} relays (need {})",
        render::short_id(&report.id),
        report.accepted,
        report.relays.len(),
        report.min_accept
    );
    if ctx.quiet && !report.ok() {
        ctx.error(&format!(
            "{tally}: {}",
            relays::failure_summary(&report.relays)
        ));
    }
    ctx.say(render::relay_table(&report.relays, color));
    worker_inbox_lines(ctx, report);
    let verdict = if report.ok() {
        render::paint("published", color, "32")
    } else {
        render::paint("NOT published", color, "1;31")
    };
    ctx.say(format!("{verdict}: {tally}"));
    if !report.ok() {
        ctx.say(format!(
            "why: {}",
            render::one_line(&relays::failure_summary(&report.relays))
        ));
        ctx.say("the job and its token are kept in the journal: `jobctl republish --all` retries");
    }
    ctx.print(run.unwrap_or(&report.id))?;
    Ok(if report.ok() { exit::OK } else { exit::FAILURE })
}

/// The command for display (a rerun's may come from a relay: sanitized).
pub(super) fn command_line(spec: &JobSpec) -> String {
    render::sanitize(
        &std::iter::once(spec.cmd.as_str())
            .chain(spec.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

pub(super) fn payment_summary(spec: &JobSpec) -> String {
    match &spec.token {
        Some(t) => format!("payment {t}"),
        None => "no payment (unpaid)".to_string(),
    }
}

/// One line under the relay table per relay that came from the worker's
/// NIP-65 relay list.
fn worker_inbox_lines(ctx: &Ctx, report: &DispatchReport) {
    for u in &report.worker_inbox {
        ctx.say(format!(
            "  {} (worker inbox): from the worker's NIP-65 relay list",
            render::sanitize(u)
        ));
    }
}
