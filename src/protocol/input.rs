//! What a user types for the wire: job references (hex, `note1`,
//! `nevent1`), `KEY=VALUE` pairs, and the checks every job request's
//! fields pass whatever they came from (flags, batch lines, past jobs).

use nostr_sdk::prelude::*;

/// A reference to a job: its id and any relay hints that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// The job id.
    pub id: EventId,
    /// Relay hints from an `nevent`.
    pub relays: Vec<RelayUrl>,
}

impl JobRef {
    /// Parse hex, `note1`, `nevent1` or a `nostr:` URI of either.
    pub fn parse(s: &str) -> Result<JobRef, String> {
        let t = s.trim();
        let t = t.strip_prefix("nostr:").unwrap_or(t);
        if t.starts_with("nevent1") {
            let n =
                Nip19Event::from_bech32(t).map_err(|_| format!("`{s}` is not a valid nevent"))?;
            return Ok(JobRef {
                id: n.event_id,
                relays: n.relays,
            });
        }
        EventId::parse(t)
            .map(|id| JobRef { id, relays: vec![] })
            .map_err(|_| format!("`{s}` is not a job id (hex, note1 or nevent1)"))
    }
}

/// Parse `KEY=VALUE` as used by `--env` and `--secret`. The key must be a
/// plausible environment variable name ([`validate_env_key`]).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got `{}`", crate::text::clip(s, 80)))?;
    if k.is_empty() {
        return Err(format!("empty key in `{}`", crate::text::clip(s, 80)));
    }
    validate_env_key(k)?;
    check_text("the value", v)?;
    Ok((k.to_string(), v.to_string()))
}

/// An environment variable name: letters, digits and `_`, not starting
/// with a digit. The one rule for `--env`, `--secret` and batch lines.
pub fn validate_env_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("empty variable name".into());
    }
    let valid = k
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !valid {
        return Err(format!(
            "`{}` is not a valid variable name (letters, digits and _, not starting with a digit)",
            crate::text::clip(k, 80)
        ));
    }
    Ok(())
}

/// Refuse a NUL byte in `s`: no command line, argument or environment
/// value can hold one (the worker's `execve` would cut or refuse it), and
/// a flag cannot carry one.
pub fn check_text(what: &str, s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!("{what} holds a NUL byte"));
    }
    Ok(())
}

/// The checks every job passes whatever it came from (flags, a batch
/// line, a past job): a non-empty command, no NUL byte anywhere, valid
/// variable names.
pub fn validate_job_fields(
    cmd: &str,
    args: &[String],
    env: &[(String, String)],
    secrets: &[(String, String)],
) -> Result<(), String> {
    if cmd.trim().is_empty() {
        return Err("the command must not be empty".into());
    }
    check_text("the command", cmd)?;
    for (i, a) in args.iter().enumerate() {
        check_text(&format!("argument {}", i + 1), a)?;
    }
    for (what, list) in [("env", env), ("secret", secrets)] {
        for (k, v) in list {
            validate_env_key(k).map_err(|e| format!("{what}: {e}"))?;
            check_text(&format!("{what} {k}"), v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_refs() {
        let id = EventId::all_zeros();
        assert_eq!(JobRef::parse(&id.to_hex()).expect("hex").id, id);
        let note = id.to_bech32().expect("note");
        assert_eq!(JobRef::parse(&note).expect("note").id, id);
        let url = RelayUrl::parse("ws://127.0.0.1:7000").expect("url");
        let nevent = Nip19Event::new(id)
            .relays([url.clone()])
            .to_bech32()
            .expect("nevent");
        let r = JobRef::parse(&format!("nostr:{nevent}")).expect("nevent");
        assert_eq!((r.id, r.relays), (id, vec![url]));
        assert!(JobRef::parse("nope").is_err());
    }

    #[test]
    fn key_value_parsing() {
        assert_eq!(parse_key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_key_value("A="), Ok(("A".into(), "".into())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("1A=x").is_err());
        assert!(parse_key_value("A-B=x").is_err());
        assert!(parse_key_value("A=x\0y").is_err());
    }

    #[test]
    fn job_fields_refuse_nul_and_bad_keys() {
        let ok = |c: &str, a: &[&str], e: &[(&str, &str)]| {
            let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            let env: Vec<(String, String)> = e
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            validate_job_fields(c, &args, &env, &[]).is_ok()
        };
        assert!(ok("act", &["-j", "build"], &[("A", "x=y")]));
        assert!(!ok("", &[], &[]));
        assert!(!ok("a\0ct", &[], &[]));
        assert!(!ok("act", &["x\0"], &[]));
        assert!(!ok("act", &[], &[("A=B", "x")]));
        assert!(!ok("act", &[], &[("A", "x\0")]));
    }
}
