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

/// `abcdef12…` style short id.
pub fn short_id(hex: &str) -> String {
    hex.chars().take(12).collect()
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
