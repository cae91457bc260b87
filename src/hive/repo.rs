//! Nostr git repositories (NIP-34): the three ways to name one
//! (`naddr1...`, ngit's `nostr://npub.../relay/identifier`,
//! `30617:<pubkey>:<identifier>`) parsed into a [`RepoRef`], and the
//! repository's kind 30617 announcement (its relays and maintainers) read
//! back from events or fetched from relays.

use std::time::Duration;

use nostr_sdk::prelude::*;

use crate::relays::{self, Reach};

/// Kind 30617: git repository announcement (NIP-34, addressable).
pub const KIND_REPO_ANNOUNCEMENT: u16 = 30617;

/// Why a repository address was refused. Each renders as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing given.
    #[error("the repository address is empty")]
    Empty,
    /// A `naddr1` that does not decode.
    #[error("`{0}` is not a valid naddr")]
    BadNaddr(String),
    /// An address of another kind than 30617.
    #[error("the address names a kind {0} event, not a kind 30617 repository announcement")]
    WrongKind(u16),
    /// The owner is not a public key.
    #[error("`{0}` is not a public key (npub or 64-char hex)")]
    BadPubkey(String),
    /// No identifier after the owner.
    #[error("the repository address has no identifier")]
    MissingIdentifier,
    /// A relay hint that is not a relay URL.
    #[error("`{0}` is not a relay URL")]
    BadRelay(String),
    /// A NIP-05 owner (`nostr://alice@example.com/repo`): needs a lookup.
    #[error("`{0}` is a NIP-05 name; give the owner as npub or hex")]
    Nip05(String),
    /// None of the known forms.
    #[error("`{0}` is not a repository (naddr1..., nostr://npub.../identifier or 30617:<pubkey>:<identifier>)")]
    Unrecognised(String),
}

impl From<AddressError> for crate::Error {
    fn from(e: AddressError) -> Self {
        crate::Error::Input(format!("repository: {e}"))
    }
}

/// A repository: its owner, its identifier (`d` tag) and relay hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// The pubkey that signs the announcement.
    pub owner: PublicKey,
    /// The announcement's `d` tag.
    pub identifier: String,
    /// Relays named by the address itself.
    pub relays: Vec<RelayUrl>,
}

/// Git protocols ngit allows before the owner in a `nostr://` URL.
const NGIT_PROTOCOLS: [&str; 6] = ["ssh", "https", "http", "git", "ftp", "filesystem"];

impl RepoRef {
    /// Parse any of the accepted forms (see the module doc).
    pub fn parse(s: &str) -> Result<RepoRef, AddressError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(AddressError::Empty);
        }
        let bare = t.strip_prefix("nostr:").filter(|r| !r.starts_with("//"));
        if let Some(naddr) = bare.or(Some(t)).filter(|r| r.starts_with("naddr1")) {
            return Self::from_naddr(naddr);
        }
        if let Some(rest) = t.strip_prefix("nostr://") {
            return Self::from_ngit(rest);
        }
        if let Some(rest) = t.strip_prefix(&format!("{KIND_REPO_ANNOUNCEMENT}:")) {
            let (pk, id) = rest
                .split_once(':')
                .ok_or(AddressError::MissingIdentifier)?;
            return Self::new(pk, id, Vec::new());
        }
        if let Some((kind, _)) = t.split_once(':') {
            if let Ok(k) = kind.parse::<u16>() {
                return Err(AddressError::WrongKind(k));
            }
        }
        Err(AddressError::Unrecognised(crate::text::clip(t, 80)))
    }

    fn new(pk: &str, id: &str, relays: Vec<RelayUrl>) -> Result<RepoRef, AddressError> {
        let owner = PublicKey::parse(pk.trim())
            .map_err(|_| AddressError::BadPubkey(crate::text::clip(pk, 80)))?;
        if id.trim().is_empty() {
            return Err(AddressError::MissingIdentifier);
        }
        Ok(RepoRef {
            owner,
            identifier: id.to_string(),
            relays,
        })
    }

    fn from_naddr(s: &str) -> Result<RepoRef, AddressError> {
        let n = Nip19Coordinate::from_bech32(s)
            .map_err(|_| AddressError::BadNaddr(crate::text::clip(s, 80)))?;
        let kind = n.coordinate.kind.as_u16();
        if kind != KIND_REPO_ANNOUNCEMENT {
            return Err(AddressError::WrongKind(kind));
        }
        if n.coordinate.identifier.is_empty() {
            return Err(AddressError::MissingIdentifier);
        }
        Ok(RepoRef {
            owner: n.coordinate.public_key,
            identifier: n.coordinate.identifier.clone(),
            relays: n.relays.clone(),
        })
    }

    /// `[protocol/][user@]<npub|hex>/[relay/...]<identifier>`.
    fn from_ngit(rest: &str) -> Result<RepoRef, AddressError> {
        let mut segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        if segs.first().is_some_and(|s| NGIT_PROTOCOLS.contains(s)) {
            segs.remove(0);
        }
        let owner = *segs.first().ok_or(AddressError::MissingIdentifier)?;
        // `user@npub1...` names a git user; `alice@example.com` is NIP-05.
        let owner = match owner.rsplit_once('@') {
            Some((_, pk)) if pk.starts_with("npub1") => pk,
            Some(_) => return Err(AddressError::Nip05(crate::text::clip(owner, 80))),
            None if owner.contains('.') => {
                return Err(AddressError::Nip05(crate::text::clip(owner, 80)))
            }
            None => owner,
        };
        if segs.len() < 2 {
            return Err(AddressError::MissingIdentifier);
        }
        let id = segs[segs.len() - 1];
        let relays = segs[1..segs.len() - 1]
            .iter()
            .map(|r| parse_relay_hint(r))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(owner, id, relays)
    }

    /// `30617:<owner hex>:<identifier>`: the value of a run's `a` tag.
    pub fn coordinate(&self) -> String {
        format!(
            "{KIND_REPO_ANNOUNCEMENT}:{}:{}",
            self.owner.to_hex(),
            self.identifier
        )
    }

    /// The `naddr1...` of the announcement, with the relay hints.
    pub fn naddr(&self) -> String {
        let c = Coordinate::new(Kind::Custom(KIND_REPO_ANNOUNCEMENT), self.owner)
            .identifier(self.identifier.clone());
        Nip19Coordinate::new(c, self.relays.clone())
            .to_bech32()
            .unwrap_or_default()
    }

    /// ngit's URL: `nostr://<npub>/<relay>/.../<identifier>`; `wss://`
    /// relays lose their scheme, others are percent-encoded whole.
    pub fn nostr_url(&self) -> String {
        let mut s = format!("nostr://{}", self.owner.to_bech32().unwrap_or_default());
        for r in &self.relays {
            s.push('/');
            s.push_str(&relay_hint(r));
        }
        s.push('/');
        s.push_str(&self.identifier);
        s
    }

    /// The filter for this repository's announcement.
    pub fn announcement_filter(&self) -> Filter {
        Filter::new()
            .kind(Kind::Custom(KIND_REPO_ANNOUNCEMENT))
            .author(self.owner)
            .identifier(self.identifier.clone())
    }
}

impl std::fmt::Display for RepoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.coordinate())
    }
}

/// A relay hint segment: `relay.example.com` (wss implied) or a
/// percent-encoded `ws%3A%2F%2Fhost%3A7777`.
fn parse_relay_hint(seg: &str) -> Result<RelayUrl, AddressError> {
    let decoded = percent_decode(seg);
    let full = if decoded.starts_with("ws://") || decoded.starts_with("wss://") {
        decoded
    } else {
        format!("wss://{decoded}")
    };
    crate::config::parse_relay(&full)
        .map_err(|_| AddressError::BadRelay(crate::text::clip(seg, 80)))
}

fn relay_hint(r: &RelayUrl) -> String {
    let s = r.to_string();
    let s = s.trim_end_matches('/');
    match s.strip_prefix("wss://") {
        Some(host) if !host.contains('/') => host.to_string(),
        _ => percent_encode(s),
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A repository announcement (kind 30617), as far as CI needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// The repository (owner = the signer; relays = its `relays` tag).
    pub repo: RepoRef,
    /// `name`.
    pub name: Option<String>,
    /// `maintainers` (besides the owner).
    pub maintainers: Vec<PublicKey>,
    /// `clone` URLs.
    pub clone: Vec<String>,
    /// When it was signed.
    pub at: Timestamp,
}

impl Announcement {
    /// Read a kind 30617 event; `None` when it is not one (or has no `d`).
    pub fn from_event(event: &Event) -> Option<Announcement> {
        if event.kind != Kind::Custom(KIND_REPO_ANNOUNCEMENT) {
            return None;
        }
        let values = |name: &str| -> Vec<String> {
            event
                .tags
                .iter()
                .map(|t| t.as_slice())
                .filter(|s| s.len() >= 2 && s[0] == name)
                .flat_map(|s| s[1..].to_vec())
                .collect()
        };
        let identifier = values("d").into_iter().next()?;
        let relays = values("relays")
            .iter()
            .filter_map(|r| crate::config::parse_relay(r).ok())
            .collect();
        let mut maintainers: Vec<PublicKey> = values("maintainers")
            .iter()
            .filter_map(|p| PublicKey::parse(p).ok())
            .filter(|p| *p != event.pubkey)
            .collect();
        maintainers.dedup();
        Some(Announcement {
            repo: RepoRef {
                owner: event.pubkey,
                identifier,
                relays,
            },
            name: values("name").into_iter().next(),
            maintainers,
            clone: values("clone"),
            at: event.created_at,
        })
    }

    /// Who may trigger runs that count: the owner, then the maintainers.
    pub fn trusted(&self) -> Vec<PublicKey> {
        let mut all = vec![self.repo.owner];
        all.extend(self.maintainers.iter().filter(|m| **m != self.repo.owner));
        all
    }
}

/// The newest announcement of `repo` among `events`.
pub fn newest_announcement(events: &[Event], repo: &RepoRef) -> Option<Announcement> {
    events
        .iter()
        .filter_map(Announcement::from_event)
        .filter(|a| a.repo.owner == repo.owner && a.repo.identifier == repo.identifier)
        .max_by_key(|a| a.at)
}

/// Fetch `repo`'s announcement from `urls`; `None` when no relay has it.
pub async fn fetch_announcement(
    client: &Client,
    urls: &[RelayUrl],
    repo: &RepoRef,
    timeout: Duration,
) -> (Option<Announcement>, Reach) {
    let f = relays::fetch_reach(client, urls, vec![repo.announcement_filter()], timeout).await;
    (newest_announcement(&f.events, repo), f.reach)
}

/// `base` plus every relay of `more` it lacks, in order.
pub fn merge_relays(base: &[RelayUrl], more: &[RelayUrl]) -> Vec<RelayUrl> {
    let mut out = base.to_vec();
    for r in more {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}
