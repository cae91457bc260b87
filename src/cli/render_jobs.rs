//! Presentation of jobs and workers for the reading verbs: the jobs table,
//! status and result lines, the finished-job summary, worker names. Time
//! comes in as `now` (the command's clock) so rendering is testable.

use std::collections::HashMap;

use comfy_table::Cell;
use jobctl::detail::StatusEntry;
use jobctl::protocol::{JobResult, JobState, WorkerAd};
use jobctl::state::{JobTracker, JobView, Update};
use jobctl::tracking::reason_text;

use super::render::{self, age, clip, clock, run_time, sanitize, short_id, short_npub, state_cell};

/// A worker's name for display; "(unnamed)" when its ad has none.
pub(crate) fn ad_name(ad: &WorkerAd, max: usize) -> String {
    if ad.name.trim().is_empty() {
        "(unnamed)".to_string()
    } else {
        clip(&render::one_line(&ad.name), max)
    }
}

/// The jobs table; `names` maps worker hex to advertised names.
pub(crate) fn jobs_table(
    views: &[JobView],
    names: &HashMap<String, String>,
    color: bool,
    now: u64,
) -> String {
    // A "note" column (failure reason, queue position) only when there is one.
    let notes = views
        .iter()
        .any(|v| v.reason.is_some() || v.queue_position.is_some());
    let mut headers = vec![
        "job", "age", "worker", "cmd", "status", "exit", "duration", "amount",
    ];
    if notes {
        headers.push("note");
    }
    let mut t = render::table(&headers, color);
    for v in views {
        t.add_row(job_row(v, names, color, now, notes));
    }
    t.to_string()
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn job_row(
    v: &JobView,
    names: &HashMap<String, String>,
    color: bool,
    now: u64,
    notes: bool,
) -> Vec<Cell> {
    let worker = v.worker.as_ref().map(|w| {
        names
            .get(w)
            .map(|n| clip(n, 40))
            .unwrap_or_else(|| short_npub(w))
    });
    let cmd = v
        .cmd
        .as_ref()
        .map(|c| {
            let s = std::iter::once(c.as_str())
                .chain(v.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            clip(&s, 40)
        })
        .unwrap_or_else(|| "(not found)".into());
    let mut row = vec![
        Cell::new(short_id(&v.id)),
        Cell::new(or_dash(v.created_at.map(|c| age(now, c)))),
        Cell::new(or_dash(worker)),
        Cell::new(cmd),
        state_cell(v.state, v.stale, color),
        Cell::new(or_dash(v.exit_code)),
        Cell::new(or_dash(v.duration.map(run_time))),
        Cell::new(match (v.amount, &v.unit) {
            (Some(a), Some(u)) => format!("{a} {}", sanitize(u)),
            _ => "-".into(),
        }),
    ];
    if notes {
        row.push(Cell::new(match (&v.reason, v.queue_position) {
            (Some(r), _) => clip(&render::one_line(r), 60),
            (None, Some(q)) => format!("#{q} in queue"),
            (None, None) => String::new(),
        }));
    }
    row
}

/// One status as a line: time, state, queue position, reason, message.
pub(crate) fn status_line(s: &StatusEntry, prefix: &str) -> String {
    let mut extra = String::new();
    if let Some(q) = s.queue_position {
        extra.push_str(&format!("#{q} in queue "));
    }
    if let Some(r) = s.reason.as_deref().filter(|_| s.state != JobState::Success) {
        extra.push_str(&format!("reason: {} ", reason_text(r)));
    }
    if s.state == JobState::Unknown && !s.status.is_empty() {
        extra.push_str(&format!("(`{}`) ", render::one_line(&clip(&s.status, 40))));
    }
    format!(
        "{}  {prefix}{:<10} {extra}{}",
        clock(s.at),
        s.state.as_str(),
        render::one_line(&s.message)
    )
    .trim_end()
    .to_string()
}

fn result_line(r: &JobResult, prefix: &str) -> String {
    format!(
        "{}  {prefix}{:<10} exit {}{}{}",
        clock(r.at.as_secs()),
        r.state().as_str(),
        r.exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "?".into()),
        r.duration
            .map(|d| format!(" in {}", run_time(d)))
            .unwrap_or_default(),
        r.error
            .as_deref()
            .filter(|_| !r.success)
            .map(|e| format!(" · reason: {}", reason_text(e)))
            .unwrap_or_default()
    )
}

/// One update of a watched job as a line (prefixed by the job when
/// several are watched).
pub(crate) fn update_line(t: &JobTracker, u: &Update, multi: bool) -> String {
    let prefix = if multi {
        format!("{}  ", short_id(&t.id.to_hex()))
    } else {
        String::new()
    };
    match u {
        Update::Status(s) => status_line(&StatusEntry::from(s), &prefix),
        Update::Result(r) => result_line(r, &prefix),
    }
}

/// A result's stdout/stderr for a summary: the URL, or a note that the
/// worker sent the text inline.
fn output_ref(v: &str) -> String {
    if jobctl::protocol::is_url(v) {
        sanitize(v)
    } else {
        format!("inline, {} bytes (print it with `jobctl logs`)", v.len())
    }
}

/// A finished job in a few lines: mark, state, exit, duration, reason,
/// logs and change.
pub(crate) fn summary(v: &JobView, color: bool) -> String {
    let mark = match v.state {
        JobState::Success => render::paint("✓", color, "32"),
        _ => render::paint("✗", color, "31"),
    };
    let mut s = format!(
        "{mark} job {} {} · exit {} · {}",
        short_id(&v.id),
        v.state,
        or_dash(v.exit_code),
        v.duration
            .map(run_time)
            .unwrap_or_else(|| "duration unknown".into()),
    );
    if let Some(r) = &v.reason {
        s.push_str(&format!("\n  reason: {}", reason_text(r)));
    }
    if let Some(u) = &v.stdout {
        s.push_str(&format!("\n  stdout: {}", output_ref(u)));
    }
    if let Some(u) = &v.stderr {
        s.push_str(&format!("\n  stderr: {}", output_ref(u)));
    }
    match &v.change {
        Some(c) => s.push_str(&format!(
            "\n  change: {} {} returned from {}",
            c.amount,
            sanitize(&c.unit),
            sanitize(&c.mint)
        )),
        None if v.change_sent => s.push_str("\n  change: returned (undecodable token)"),
        None => s.push_str("\n  change: none returned"),
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A job view for rendering tests.
    pub(crate) fn view(id: &str, created: u64, state: JobState) -> JobView {
        JobView {
            found: true,
            created_at: Some(created),
            cmd: Some("act".into()),
            args: vec!["-j".into(), "build".into()],
            amount: Some(21),
            unit: Some("sat".into()),
            ..JobView::blank(id.into(), state)
        }
    }

    #[test]
    fn jobs_table_ages_by_the_given_clock_and_marks_stale() {
        let mut stale = view(&"ab".repeat(32), 1_000, JobState::Pending);
        stale.stale = true;
        let mut failed = view(&"cd".repeat(32), 4_600, JobState::Failed);
        failed.reason = Some("out of\nmemory".into());
        failed.exit_code = Some(137);
        failed.duration = Some(12.34);
        let s = jobs_table(&[stale, failed], &HashMap::new(), false, 8_200);
        assert!(!s.contains('\x1b'), "no colour: {s}");
        assert!(s.contains("abababababab") && s.contains("2h"), "{s}");
        assert!(s.contains("pending (stale)"), "{s}");
        assert!(
            s.contains("1h") && s.contains("137") && s.contains("12.3s"),
            "{s}"
        );
        assert!(s.contains("out of memory") && s.contains("note"), "{s}");
        assert!(s.contains("act -j build") && s.contains("21 sat"), "{s}");
        let plain = jobs_table(
            &[view("ef", 8_200, JobState::Running)],
            &HashMap::new(),
            false,
            8_200,
        );
        assert!(!plain.contains("note") && plain.contains("0s"), "{plain}");
    }

    #[test]
    fn status_lines_show_queue_reason_and_unknown_words() {
        let s = StatusEntry {
            at: 3_661,
            state: JobState::Queued,
            status: "queued".into(),
            message: "waiting".into(),
            queue_position: Some(2),
            reason: None,
        };
        assert_eq!(
            status_line(&s, ""),
            "01:01:01  queued     #2 in queue waiting"
        );
        let odd = StatusEntry {
            state: JobState::Unknown,
            status: "teleporting".into(),
            message: String::new(),
            queue_position: None,
            ..s
        };
        assert_eq!(
            status_line(&odd, "abc  "),
            "01:01:01  abc  unknown    (`teleporting`)"
        );
    }

    #[test]
    fn summary_says_what_came_back() {
        let mut v = view("12", 0, JobState::Success);
        v.exit_code = Some(0);
        v.duration = Some(0.25);
        assert_eq!(
            summary(&v, false),
            "✓ job 12 success · exit 0 · 250ms\n  change: none returned"
        );
        v.state = JobState::Failed;
        v.change_sent = true;
        v.stdout = Some("hello".into());
        let s = summary(&v, false);
        assert!(s.starts_with("✗ job 12 failed"), "{s}");
        assert!(s.contains("stdout: inline, 5 bytes"), "{s}");
        assert!(s.ends_with("change: returned (undecodable token)"), "{s}");
    }
}
