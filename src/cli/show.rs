//! `jobctl show`: a job in full (request, status timeline, result, the
//! journal's timeline); the library assembles it, this file renders it.

use clap::Args;

use jobctl::detail::JobDetail;
use jobctl::error::{exit, Result};
use jobctl::follow;
use jobctl::hive::follow::RunSummary;
use jobctl::protocol::WorkerAd;
use jobctl::relays;

use super::read::{load_one, reader, ReadArgs};
use super::render::{self, age, clock, sanitize};
use super::render_jobs::{ad_name, status_line, summary};
use super::{runtime, Ctx};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Job id (hex, note1, nevent1), or `-` for the first id on stdin; a
    /// workflow run's id (kind 5401) shows the run and its job.
    #[arg(value_name = "JOB|RUN")]
    pub job: String,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

pub fn run(ctx: &Ctx, a: ShowArgs) -> Result<i32> {
    let (cfg, urls, t, run) = load_one(ctx, &a.job, &a.read)?;
    let run = run.map(|r| r.summary(Some(&t)));
    let worker = t.worker();
    // The worker's name is a nicety: only what is left of the deadline.
    let deadline = ctx.deadline();
    let ad: Option<WorkerAd> = match worker {
        Some(w) if !deadline.expired() => runtime()?.block_on(async {
            let client = reader(ctx, &cfg, &urls, false).await.ok()?;
            let ad = follow::worker_ad(&client, &urls, w, deadline.remaining()).await;
            relays::shutdown(&client).await;
            ad.into_ad()
        }),
        _ => None,
    };
    let journal = match ctx.existing_journal()? {
        Some(j) => j.timeline(&t.id)?,
        None => Vec::new(),
    };
    let d = JobDetail::new(&t, ad, journal, ctx.now())?;
    if a.json {
        let mut value = serde_json::to_value(&d)
            .map_err(|e| jobctl::Error::Runtime(format!("cannot encode JSON: {e}")))?;
        if let (Some(r), Some(o)) = (&run, value.as_object_mut()) {
            let r = serde_json::to_value(r)
                .map_err(|e| jobctl::Error::Runtime(format!("cannot encode JSON: {e}")))?;
            o.insert("run".into(), r);
        }
        ctx.print(&value.to_string())?;
        return Ok(exit::OK);
    }
    let mut text = text(&d, render::stderr_color(), ctx.now().as_secs());
    if let Some(r) = &run {
        text = format!("{}\n{text}", run_lines(r).join("\n"));
    }
    ctx.say(text);
    ctx.print(run.as_ref().map(|r| r.id.as_str()).unwrap_or(&d.id))?;
    Ok(exit::OK)
}

/// A workflow run's part, above its job's.
pub(crate) fn run_lines(r: &RunSummary) -> Vec<String> {
    let mut lines = vec![
        format!("run      {}", r.id),
        format!(
            "workflow {} on {}{}",
            sanitize(&r.workflow),
            sanitize(&r.branch),
            if r.commit.is_empty() {
                String::new()
            } else {
                format!(" at {}", sanitize(&r.commit))
            }
        ),
    ];
    let source = serde_json::to_value(r.source)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut state = format!("run state {} (from the {source})", r.state);
    if let Some(c) = r.exit_code {
        state.push_str(&format!(", exit {c}"));
    }
    if let Some(d) = r.duration {
        state.push_str(&format!(", {d}s"));
    }
    lines.push(state);
    if let Some(u) = &r.log_url {
        lines.push(format!("log      {}", sanitize(u)));
    }
    lines
}

/// The request part: id, age, worker, command, env, secrets, payment.
fn request_lines(d: &JobDetail, now: u64) -> Vec<String> {
    let mut lines = vec![
        format!("job      {}", d.id),
        format!(
            "created  {} ({} ago)",
            d.created_at.map(clock).unwrap_or_default(),
            d.created_at.map(|c| age(now, c)).unwrap_or_default()
        ),
        format!(
            "worker   {}{}",
            d.worker.npub,
            d.worker
                .ad
                .as_ref()
                .map(|a| format!(" ({})", ad_name(a, 80)))
                .unwrap_or_default()
        ),
        format!(
            "command  {}",
            sanitize(&format!("{} {}", d.cmd, d.args.join(" ")))
        ),
    ];
    if !d.env.is_empty() {
        lines.push(format!("env      {}", sanitize(&d.env_keys().join(", "))));
    }
    if !d.secret_keys.is_empty() {
        lines.push(format!(
            "secrets  {} (values encrypted to the worker)",
            sanitize(&d.secret_keys.join(", "))
        ));
    }
    let payment = d.payment_redacted.clone();
    lines.push(format!(
        "payment  {}",
        payment.unwrap_or_else(|| "none (unpaid)".into())
    ));
    if let Some(p) = &d.parent {
        lines.push(format!("parent   {p}"));
    }
    lines
}

/// The state part: state, reason, queue, the worker's timeline, the
/// result's summary.
fn state_lines(d: &JobDetail, color: bool) -> Vec<String> {
    let stale = if d.stale {
        " (stale: pending for over 72 hours)"
    } else {
        ""
    };
    let mut lines = vec![format!("state    {}{stale}", d.state)];
    if let Some(r) = &d.reason {
        lines.push(format!("reason   {}", jobctl::tracking::reason_text(r)));
    }
    if let Some(q) = d.queue_position {
        lines.push(format!("queue    #{q}"));
    }
    lines.push("timeline".into());
    if d.timeline.is_empty() {
        lines.push("  (no status from the worker yet)".into());
    }
    for s in &d.timeline {
        lines.push(format!("  {}", status_line(s, "")));
    }
    if d.result.is_some() {
        lines.push(summary(&d.view, color));
    }
    lines
}

/// `show` as text for stderr.
fn text(d: &JobDetail, color: bool, now: u64) -> String {
    let mut lines = request_lines(d, now);
    lines.extend(state_lines(d, color));
    if !d.journal.is_empty() {
        lines.push("journal".into());
        for e in &d.journal {
            lines.push(format!(
                "  {}  {:<10} {:<8} {}",
                clock(e.at),
                e.state,
                e.source,
                render::one_line(&e.message)
            ));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobctl::protocol::JobRequest;
    use jobctl::state::JobTracker;
    use nostr_sdk::prelude::*;

    #[test]
    fn show_text_ages_by_the_given_clock() {
        let (user, worker) = (Keys::generate(), Keys::generate());
        let ev = JobRequest {
            worker: worker.public_key(),
            p: worker.public_key(),
            cmd: "act".into(),
            args: vec!["-j".into(), "test".into()],
            payment: None,
            parent: None,
            env: vec![("CI".into(), "1".into())],
            secrets: vec![],
            content: String::new(),
        }
        .to_builder()
        .custom_created_at(Timestamp::from(3_600))
        .sign_with_keys(&user)
        .expect("sign");
        let mut t = JobTracker::new(ev.id);
        t.ingest(&ev);
        let now = 3_600 + 73 * 3600;
        let d = JobDetail::new(&t, None, Vec::new(), Timestamp::from(now)).expect("detail");
        let s = text(&d, false, now);
        assert!(s.contains("created  01:00:00 (3d ago)"), "{s}");
        assert!(
            s.contains("command  act -j test") && s.contains("env      CI"),
            "{s}"
        );
        assert!(s.contains("payment  none (unpaid)"), "{s}");
        assert!(
            s.contains("state    pending (stale: pending for over 72 hours)"),
            "{s}"
        );
        assert!(s.contains("(no status from the worker yet)"), "{s}");
    }
}
