//! Notices: what a library decision wants the user to see (a warning, or
//! a note), returned as data. The library never prints; the binary shows
//! each [`Notice`] on stderr (warnings even with `--quiet`).

/// One message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Something the user should know that did not stop the command
    /// (shown as `warning: ...`, even with `--quiet`).
    Warning(String),
    /// A plain note for people (hidden by `--quiet`).
    Info(String),
}

/// Notices collected in the order they arose. Functions that can fail
/// half-way take `&mut Notices`, so what arose before an error is still
/// shown beside it.
pub type Notices = Vec<Notice>;

/// The first 12 hex characters of an id, as messages name jobs.
pub fn short_id(hex: &str) -> String {
    hex.chars().take(12).collect()
}

/// `npub1abcd…wxyz`, a key as tables and messages show it.
pub fn short_npub(pk: &nostr_sdk::PublicKey) -> String {
    let n = crate::keys::npub(pk);
    if n.len() > 16 {
        format!("{}…{}", &n[..10], &n[n.len() - 4..])
    } else {
        n
    }
}
