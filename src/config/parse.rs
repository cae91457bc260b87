//! Parsing and writing the values flags and the config file take: relay
//! URLs, pubkeys, durations (`10s`, `2m`, `1.5s`), times (unix, `1h` ago,
//! dates).

use std::time::Duration;

use nostr_sdk::prelude::*;

use crate::protocol::PTag;

/// Parse a relay URL; only `ws://` and `wss://` are accepted.
pub fn parse_relay(s: &str) -> Result<RelayUrl, String> {
    let s = s.trim();
    if !(s.starts_with("ws://") || s.starts_with("wss://")) {
        return Err(format!("`{s}` is not a relay URL (ws:// or wss://)"));
    }
    RelayUrl::parse(s).map_err(|e| format!("`{s}` is not a valid relay URL: {e}"))
}

/// Parse several relay URLs, dropping duplicates, keeping order.
pub fn parse_relays<'a>(list: impl IntoIterator<Item = &'a str>) -> Result<Vec<RelayUrl>, String> {
    let mut out: Vec<RelayUrl> = Vec::new();
    for s in list {
        let url = parse_relay(s)?;
        if !out.contains(&url) {
            out.push(url);
        }
    }
    Ok(out)
}

/// Parse a pubkey given as npub, hex, or `nostr:` URI.
pub fn parse_pubkey(s: &str) -> Result<PublicKey, String> {
    let s = s.trim();
    if s.starts_with("nsec") {
        return Err("that is a secret key (nsec), not a public key; never share it".into());
    }
    PublicKey::parse(s).map_err(|_| format!("`{s}` is not a public key (npub or 64-char hex)"))
}

/// Parse the `p` tag mode.
pub fn parse_p_tag(s: &str) -> Result<PTag, String> {
    match s.trim() {
        "worker" => Ok(PTag::Worker),
        "self" => Ok(PTag::SelfKey),
        other => parse_pubkey(other)
            .map(PTag::Key)
            .map_err(|_| format!("`{other}` is not `worker`, `self`, or a public key")),
    }
}

/// Parse a duration: `10s`, `500ms`, `2m`, `1h`, `1.5s`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 365.0 * 86400.0 {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse a point in time: unix seconds, a duration meaning that long ago
/// (`24h`, `7d`), or a UTC date `YYYY-MM-DD`.
pub fn parse_time(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) && t.len() >= 9 {
        return t
            .parse::<u64>()
            .map(Timestamp::from)
            .map_err(|e| e.to_string());
    }
    if let Some(days) = parse_date(t) {
        return Ok(Timestamp::from(days * 86400));
    }
    let d = parse_duration(t).map_err(|_| {
        format!("`{s}` is not a time (unix seconds, YYYY-MM-DD, or an age such as 24h or 7d)")
    })?;
    Ok(Timestamp::from(now.as_secs().saturating_sub(d.as_secs())))
}

/// Days since 1970-01-01 for `YYYY-MM-DD`.
fn parse_date(s: &str) -> Option<u64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    if s.len() != 10
        || !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146097 + doe - 719468).ok()
}

/// Render a duration the way `parse_duration` reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "-1s", "0", "10 parsecs", "1e9"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
    }

    #[test]
    fn times() {
        let now = Timestamp::from(1_700_000_000);
        assert_eq!(
            parse_time("1600000000", now),
            Ok(Timestamp::from(1_600_000_000))
        );
        assert_eq!(
            parse_time("1h", now),
            Ok(Timestamp::from(1_700_000_000 - 3600))
        );
        assert_eq!(
            parse_time("2026-11-23", now),
            Ok(Timestamp::from(1_795_392_000))
        );
        assert_eq!(parse_time("1970-01-02", now), Ok(Timestamp::from(86_400)));
        assert!(parse_time("yesterday", now).is_err());
    }

    #[test]
    fn relay_urls() {
        assert!(parse_relay("ws://127.0.0.1:7777").is_ok());
        assert!(parse_relay("http://example.com").is_err());
        assert!(parse_relay("wss://").is_err());
        let list = parse_relays(["wss://a.example", "wss://a.example"]).expect("dedup");
        assert_eq!(list.len(), 1);
    }
}
