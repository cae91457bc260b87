//! Presentation: comfy-table tables and one-line summaries for stderr, JSON
//! for stdout, and the colour rule (none when `NO_COLOR` is set or the
//! stream is not a terminal). Nothing here decides anything; it renders.

use std::io::IsTerminal;

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};

use crate::relays::{RelayOutcome, RelayStatus};

/// Whether stderr should be coloured.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Whether stderr is an interactive terminal (spinners, prompts).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// A new table styled for the terminal, or plain when `color` is false.
pub fn table(header: &[&str], color: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .remove_style(comfy_table::TableComponent::HorizontalLines)
        .remove_style(comfy_table::TableComponent::MiddleIntersections)
        .remove_style(comfy_table::TableComponent::LeftBorderIntersections)
        .remove_style(comfy_table::TableComponent::RightBorderIntersections)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !color {
        t.force_no_tty();
    } else {
        t.enforce_styling();
    }
    t.set_header(header.iter().map(Cell::new));
    t
}

fn status_color(s: RelayStatus) -> Color {
    match s {
        RelayStatus::Accepted => Color::Green,
        RelayStatus::Rejected => Color::Red,
        RelayStatus::Failed => Color::Yellow,
    }
}

/// The per-relay table: url, result, message, ms.
pub fn relay_table(outcomes: &[RelayOutcome], color: bool) -> String {
    let mut t = table(&["relay", "result", "message", "ms"], color);
    for o in outcomes {
        let mut status = Cell::new(o.status);
        if color {
            status = status.fg(status_color(o.status));
        }
        t.add_row(vec![
            Cell::new(&o.url),
            status,
            Cell::new(one_line(&o.message)),
            Cell::new(o.latency_ms),
        ]);
    }
    t.to_string()
}

/// Collapse newlines so a relay's message cannot break the table.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first 12 hex characters of an id, for tables.
pub fn short_id(hex: &str) -> String {
    hex.chars().take(12).collect()
}

/// `12s`, `5m`, `3h`, `2d` between `ts` and `now`.
pub fn age(now: u64, ts: u64) -> String {
    let d = now.saturating_sub(ts);
    match d {
        0..=59 => format!("{d}s"),
        60..=3599 => format!("{}m", d / 60),
        3600..=86399 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86400),
    }
}

/// `HH:MM:SS` (UTC) of a unix time.
pub fn clock(ts: u64) -> String {
    let s = ts % 86400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `850ms`, `12.3s`, `2m05s`, `1h02m` for a run time in seconds.
pub fn run_time(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    if secs < 1.0 {
        return format!("{}ms", (secs * 1000.0).round() as u64);
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s / 60) % 60)
    }
}

/// A state name, coloured by what it means.
pub fn state_cell(state: crate::protocol::JobState, stale: bool, color: bool) -> Cell {
    use crate::protocol::JobState as S;
    let text = if stale {
        format!("{state} (stale)")
    } else {
        state.to_string()
    };
    let cell = Cell::new(text);
    if !color {
        return cell;
    }
    match state {
        S::Success => cell.fg(Color::Green),
        S::Failed | S::Error => cell.fg(Color::Red),
        S::Cancelled | S::Unknown => cell.fg(Color::Yellow),
        S::Running | S::Queued => cell.fg(Color::Cyan),
        S::Pending => cell,
        S::Unpublished => cell.fg(Color::Magenta),
    }
}

/// Short npub for tables: `npub1abcd…wxyz`.
pub fn short_npub(hex: &str) -> String {
    match nostr_sdk::PublicKey::from_hex(hex).map(|pk| crate::keys::npub(&pk)) {
        Ok(n) if n.len() > 16 => format!("{}…{}", &n[..10], &n[n.len() - 4..]),
        Ok(n) => n,
        Err(_) => short_id(hex),
    }
}

/// Paint `s` when colour is on.
pub fn paint(s: &str, color: bool, code: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// `error: message` in one line on stderr.
pub fn print_error(msg: &str) {
    let color = stderr_color();
    eprintln!("{} {}", paint("error:", color, "1;31"), one_line(msg));
}

/// `warning: message` in one line on stderr.
pub fn print_warning(msg: &str) {
    let color = stderr_color();
    eprintln!("{} {}", paint("warning:", color, "1;33"), one_line(msg));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(age(100, 40), "1m");
        assert_eq!(age(100_000, 0), "1d");
        assert_eq!(clock(3661), "01:01:01");
        assert_eq!(run_time(0.25), "250ms");
        assert_eq!(run_time(12.34), "12.3s");
        assert_eq!(run_time(125.0), "2m05s");
    }

    #[test]
    fn plain_table_has_no_escape_codes() {
        let o = vec![RelayOutcome {
            url: "ws://127.0.0.1:1".into(),
            status: RelayStatus::Rejected,
            message: "blocked:\nnope".into(),
            latency_ms: 3,
        }];
        let s = relay_table(&o, false);
        assert!(!s.contains('\x1b'));
        assert!(s.contains("blocked: nope"));
    }
}
