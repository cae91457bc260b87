//! Text that came from the network, made safe to show: control characters
//! and bidi overrides escaped, lengths bounded. Used wherever a relay's,
//! worker's or mint's words reach a terminal or a log line.

/// Collapse newlines so a relay's message cannot break the table, and
/// [`sanitize`] what is left.
pub fn one_line(s: &str) -> String {
    sanitize(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Whether a character may not reach a terminal as it is: C0 and C1
/// controls, DEL, and the Unicode bidirectional overrides and isolates
/// that reorder what is shown ("Trojan Source").
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Make a string that came from the network (a worker's name or status
/// message, a relay's reason, a URL, a mint name...) safe to print on a
/// terminal: every control character (ESC, BEL, CSI, a newline...) and
/// every bidi override is shown escaped (`\x1b`, `\u{202e}`) instead of
/// being interpreted, so nobody can clear the screen, retitle the window
/// or fake a line. Printable text, including non-ASCII, is unchanged.
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    out
}

/// [`sanitize`], then cut to at most `max` characters (with `…`).
pub fn clip(s: &str, max: usize) -> String {
    let s = sanitize(s);
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_controls_and_bidi_but_keeps_text() {
        assert_eq!(sanitize("plain ünïcödé ✓"), "plain ünïcödé ✓");
        assert_eq!(sanitize("\x1b[2Jx\x07"), "\\x1b[2Jx\\x07");
        assert_eq!(sanitize("a\u{9b}b\u{202e}c"), "a\\u{9b}b\\u{202e}c");
        assert_eq!(one_line("x\n\x1b]0;t\x07 y"), "x \\x1b]0;t\\x07 y");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
