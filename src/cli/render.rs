//! Presentation: comfy-table tables and one-line summaries for stderr, JSON
//! for stdout, and the colour rule (none when `NO_COLOR` is set or the
//! stream is not a terminal). Nothing here decides anything; it renders.

use std::io::IsTerminal;

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};

use jobctl::relays::{RelayOutcome, RelayStatus};
pub use jobctl::text::{clip, one_line, sanitize};

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
            Cell::new(sanitize(&o.url)),
            status,
            Cell::new(one_line(&o.message)),
            Cell::new(o.latency_ms),
        ]);
    }
    t.to_string()
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
pub fn state_cell(state: jobctl::protocol::JobState, stale: bool, color: bool) -> Cell {
    use jobctl::protocol::JobState as S;
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
        S::Cancelled | S::Skipped | S::Unknown => cell.fg(Color::Yellow),
        S::Running | S::Queued => cell.fg(Color::Cyan),
        S::Pending => cell,
        S::Unpublished => cell.fg(Color::Magenta),
    }
}

/// Short npub for tables: `npub1abcd…wxyz`.
pub fn short_npub(hex: &str) -> String {
    match nostr_sdk::PublicKey::from_hex(hex).map(|pk| jobctl::keys::npub(&pk)) {
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

/// The stderr log: what `tracing` events become on stderr. Every line is
/// [`sanitize`]d and cut to a bounded length. Lines from other crates (the
/// nostr relay pool, websockets...) say what a relay did wrong, and a
/// misbehaving relay can make them repeat endlessly or carry megabytes:
/// each of those prints at most once per (relay, call site), i.e. once
/// per relay and kind of fault, and at most [`MAX_FOREIGN_LINES`] in all.
/// The nostr crates are also capped at `info`, whatever filter is set:
/// at `debug` and `trace` they log whole messages, payment tokens included.
pub mod log {
    use std::collections::HashSet;
    use std::fmt::{self, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use tracing::callsite::Identifier;
    use tracing::field::{Field, Visit};
    use tracing::subscriber::Interest;
    use tracing::{Event, Level, Metadata, Subscriber};
    use tracing_subscriber::layer::{Context, Layer};

    /// Longest line from another crate, in characters.
    pub const MAX_FOREIGN_CHARS: usize = 300;
    /// Longest line from jobctl itself, in characters.
    pub const MAX_OWN_CHARS: usize = 2000;
    /// Longest field of a line from another crate, in characters.
    pub const MAX_FOREIGN_FIELD_CHARS: usize = 80;
    /// Lines from other crates printed per process, at most.
    pub const MAX_FOREIGN_LINES: usize = 40;

    /// Crates that log relay messages (and so tokens) at debug/trace.
    const NOSTR_TARGETS: &[&str] = &[
        "nostr",
        "nostr_sdk",
        "nostr_relay_pool",
        "nostr_database",
        "nostr_gossip",
        "async_wsocket",
        "tungstenite",
        "tokio_tungstenite",
    ];

    fn crate_of(target: &str) -> &str {
        target.split("::").next().unwrap_or(target)
    }

    fn is_own(target: &str) -> bool {
        crate_of(target) == "jobctl"
    }

    /// Whether an event is above the cap for its crate.
    fn capped(meta: &Metadata<'_>) -> bool {
        NOSTR_TARGETS.contains(&crate_of(meta.target())) && *meta.level() > Level::INFO
    }

    /// A string that stops growing at `max` bytes (on a char boundary), so
    /// formatting a 5 MB field costs time but no memory.
    struct Bounded {
        s: String,
        max: usize,
        cut: bool,
    }

    impl Bounded {
        fn new(max: usize) -> Self {
            Bounded {
                s: String::new(),
                max,
                cut: false,
            }
        }
    }

    impl fmt::Write for Bounded {
        fn write_str(&mut self, part: &str) -> fmt::Result {
            if self.cut {
                return Ok(());
            }
            let room = self.max.saturating_sub(self.s.len());
            if part.len() <= room {
                self.s.push_str(part);
            } else {
                let mut end = room;
                while !part.is_char_boundary(end) {
                    end -= 1;
                }
                self.s.push_str(&part[..end]);
                self.cut = true;
            }
            Ok(())
        }
    }

    /// The fields of one event, each bounded.
    struct Fields {
        max: usize,
        message: String,
        rest: Vec<(&'static str, String)>,
        relay: Option<String>,
    }

    impl Fields {
        fn push(&mut self, field: &Field, value: String) {
            if matches!(field.name(), "url" | "relay" | "relay_url") {
                self.relay = Some(value.chars().take(200).collect());
            }
            if field.name() == "message" {
                self.message = value;
            } else {
                self.rest.push((field.name(), value));
            }
        }
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            let mut b = Bounded::new(self.max);
            let _ = b.write_str(value);
            self.push(field, b.s);
        }

        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            let mut b = Bounded::new(self.max);
            let _ = write!(b, "{value:?}");
            self.push(field, b.s);
        }
    }

    /// The first `ws://` or `wss://` URL in a message, for events that name
    /// their relay only in the text.
    fn relay_in(message: &str) -> Option<String> {
        let start = message.find("ws://").or_else(|| message.find("wss://"))?;
        Some(
            message[start..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '\'' | '"' | ',' | ')'))
                .take(200)
                .collect(),
        )
    }

    /// The layer; see the module docs.
    pub struct StderrLog {
        ansi: bool,
        seen: Mutex<HashSet<(Identifier, String)>>,
        foreign: AtomicUsize,
    }

    impl StderrLog {
        /// A layer writing to stderr, coloured when `ansi`.
        pub fn new(ansi: bool) -> Self {
            StderrLog {
                ansi,
                seen: Mutex::new(HashSet::new()),
                foreign: AtomicUsize::new(0),
            }
        }

        /// The line an event becomes, or `None` when it is suppressed (a
        /// repeat, or past the budget). Public for tests.
        pub fn render(&self, event: &Event<'_>) -> Option<String> {
            let meta = event.metadata();
            let own = is_own(meta.target());
            let max = if own {
                MAX_OWN_CHARS
            } else {
                MAX_FOREIGN_CHARS
            };
            let mut f = Fields {
                max: max * 4,
                message: String::new(),
                rest: Vec::new(),
                relay: None,
            };
            event.record(&mut f);
            if !own {
                let relay = f
                    .relay
                    .clone()
                    .or_else(|| relay_in(&f.message))
                    .unwrap_or_default();
                let fresh = self
                    .seen
                    .lock()
                    .map(|mut s| s.insert((meta.callsite(), relay)))
                    .unwrap_or(false);
                if !fresh {
                    return None;
                }
                let n = self.foreign.fetch_add(1, Ordering::Relaxed);
                if n == MAX_FOREIGN_LINES {
                    return Some(format!(
                        "{} further log lines from relays are not shown",
                        self.level(&Level::WARN)
                    ));
                }
                if n > MAX_FOREIGN_LINES {
                    return None;
                }
            }
            let mut text = f.message;
            for (k, v) in &f.rest {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(k);
                text.push('=');
                // One huge field (a relay's whole message) must not push
                // the others (the error) off the line.
                if own {
                    text.push_str(v);
                } else {
                    text.push_str(&super::clip(v, MAX_FOREIGN_FIELD_CHARS));
                }
            }
            if !own {
                text = format!("{}: {text}", crate_of(meta.target()));
            }
            let text = super::clip(&text.split_whitespace().collect::<Vec<_>>().join(" "), max);
            Some(format!("{} {text}", self.level(meta.level())))
        }

        fn level(&self, level: &Level) -> String {
            let (name, code) = match *level {
                Level::ERROR => ("ERROR", "31"),
                Level::WARN => (" WARN", "33"),
                Level::INFO => (" INFO", "32"),
                Level::DEBUG => ("DEBUG", "34"),
                Level::TRACE => ("TRACE", "35"),
            };
            super::paint(name, self.ansi, code)
        }
    }

    impl<S: Subscriber> Layer<S> for StderrLog {
        fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
            if capped(meta) {
                Interest::never()
            } else {
                Interest::always()
            }
        }

        fn enabled(&self, meta: &Metadata<'_>, _cx: Context<'_, S>) -> bool {
            !capped(meta)
        }

        fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
            if let Some(line) = self.render(event) {
                // A closed stderr is no reason to panic.
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }
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

    #[test]
    fn foreign_log_lines_are_bounded_and_said_once_per_relay_and_fault() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt;

        struct Tap(Arc<log::StderrLog>, Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Tap {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if let Some(l) = self.0.render(e) {
                    self.1.lock().expect("lock").push(l);
                }
            }
        }
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry()
            .with(Tap(Arc::new(log::StderrLog::new(false)), lines.clone()));
        let big = format!("{}\x1b[2J", "A".repeat(1_000_000));
        tracing::subscriber::with_default(sub, || {
            for url in ["ws://a", "ws://a", "ws://b"] {
                for _ in 0..100 {
                    tracing::error!(target: "nostr_relay_pool::relay", url = %url, msg = %big, "Impossible to handle relay message.");
                }
            }
            for _ in 0..2 {
                tracing::warn!(target: "nostr_relay_pool", "Connected to 'ws://c'");
            }
            tracing::warn!(target: "jobctl::relays", "own line");
            tracing::warn!(target: "jobctl::relays", "own line");
        });
        let lines = lines.lock().expect("lock");
        assert_eq!(lines.len(), 5, "{lines:?}");
        for l in lines.iter() {
            assert!(l.chars().count() <= log::MAX_FOREIGN_CHARS + 8, "{l}");
            assert!(!l.contains('\x1b'));
        }
        assert!(lines[0].contains("url=ws://a"));
        assert!(lines[1].contains("url=ws://b"));
        assert!(lines[0].contains("msg=AAAA") && lines[0].contains('…'));
    }
}
