//! NIP-51 lists (a worker's freelist, kind 30000; pointers to any list)
//! and the worker's NIP-65 relay list (kind 10002): built and parsed.

use nostr_sdk::prelude::*;

use super::{KIND_FOLLOW_SET, KIND_RELAY_LIST};

/// Where a NIP-51 list lives: an address (`naddr1...` or
/// `kind:pubkey:d`, newest version wins) or one event (`nevent1...`,
/// `note1...` or hex id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListPointer {
    /// A replaceable or addressable list.
    Address(Coordinate),
    /// One fixed event.
    Event(EventId),
}

impl ListPointer {
    /// Parse any of the forms; `None` when it is none of them.
    pub fn parse(s: &str) -> Option<ListPointer> {
        let t = s.trim();
        let t = t.strip_prefix("nostr:").unwrap_or(t);
        if t.starts_with("nevent1") {
            return Nip19Event::from_bech32(t)
                .ok()
                .map(|n| ListPointer::Event(n.event_id));
        }
        if t.starts_with("note1") || (t.len() == 64 && !t.contains(':')) {
            return EventId::parse(t).ok().map(ListPointer::Event);
        }
        Coordinate::parse(t).ok().map(ListPointer::Address)
    }

    /// The filter that fetches the list.
    pub fn filter(&self) -> Filter {
        match self {
            ListPointer::Address(c) => {
                let f = Filter::new().kind(c.kind).author(c.public_key);
                if c.identifier.is_empty() {
                    f.limit(4)
                } else {
                    f.identifier(c.identifier.clone()).limit(4)
                }
            }
            ListPointer::Event(id) => Filter::new().id(*id).limit(1),
        }
    }

    /// Whether `e` is (a version of) the list.
    pub fn matches(&self, e: &Event) -> bool {
        match self {
            ListPointer::Event(id) => e.id == *id,
            ListPointer::Address(c) => {
                e.kind == c.kind
                    && e.pubkey == c.public_key
                    && (c.identifier.is_empty()
                        || e.tags.identifier() == Some(c.identifier.as_str()))
            }
        }
    }
}

/// The members of a NIP-51 list: its `p` tags.
pub fn list_members(e: &Event) -> Vec<PublicKey> {
    e.tags
        .iter()
        .filter_map(|t| {
            let s = t.as_slice();
            (s.len() >= 2 && s[0] == "p")
                .then(|| PublicKey::from_hex(s[1].trim()).ok())
                .flatten()
        })
        .collect()
}

/// A NIP-65 relay list (kind 10002) naming `relays` for reading and
/// writing (an `r` tag without a marker means both).
pub fn relay_list(relays: &[RelayUrl]) -> EventBuilder {
    EventBuilder::new(Kind::Custom(KIND_RELAY_LIST), "").tags(
        relays
            .iter()
            .map(|r| Tag::custom(TagKind::Custom("r".into()), [r.to_string()])),
    )
}

/// The relays of a NIP-65 relay list (its well-formed `r` tags); empty
/// when the kind is wrong.
pub fn relay_list_urls(e: &Event) -> Vec<RelayUrl> {
    if e.kind != Kind::Custom(KIND_RELAY_LIST) {
        return Vec::new();
    }
    e.tags
        .iter()
        .filter_map(|t| {
            let s = t.as_slice();
            (s.len() >= 2 && s[0] == "r")
                .then(|| RelayUrl::parse(&s[1]).ok())
                .flatten()
        })
        .collect()
}

/// A NIP-51 follow set (kind 30000, `d` = `d`) with one `p` tag per member.
pub fn freelist(d: &str, members: &[PublicKey]) -> EventBuilder {
    let mut tags = vec![Tag::identifier(d)];
    tags.extend(members.iter().map(|m| Tag::public_key(*m)));
    EventBuilder::new(Kind::Custom(KIND_FOLLOW_SET), "").tags(tags)
}

/// The `kind:pubkey:d` address of `author`'s follow set `d`.
pub fn freelist_address(author: &PublicKey, d: &str) -> String {
    format!("{KIND_FOLLOW_SET}:{}:{d}", author.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::custom;
    use crate::protocol::test_util::{pk, sign};

    #[test]
    fn list_pointers_in_every_form() {
        let keys = Keys::generate();
        let list = EventBuilder::new(Kind::Custom(30000), "")
            .tags(vec![
                Tag::identifier("free"),
                Tag::public_key(pk(7)),
                custom("p", vec!["not a key".into()]),
            ])
            .sign_with_keys(&keys)
            .expect("sign");
        assert_eq!(list_members(&list), vec![pk(7)]);
        let kpd = format!("30000:{}:free", keys.public_key().to_hex());
        let coord = Coordinate::new(Kind::Custom(30000), keys.public_key()).identifier("free");
        let naddr = Nip19Coordinate::new(coord, Vec::<RelayUrl>::new())
            .to_bech32()
            .expect("naddr");
        let nevent = Nip19Event::new(list.id).to_bech32().expect("nevent");
        for p in [
            kpd.as_str(),
            naddr.as_str(),
            nevent.as_str(),
            &format!("nostr:{naddr}"),
        ] {
            let l = ListPointer::parse(p).unwrap_or_else(|| panic!("{p} parses"));
            assert!(l.matches(&list), "{p}");
            assert!(
                l.filter().match_event(&list, MatchEventOptions::new()),
                "{p}"
            );
        }
        let other = format!("30000:{}:other", keys.public_key().to_hex());
        assert!(!ListPointer::parse(&other).expect("parses").matches(&list));
        assert!(ListPointer::parse("garbage").is_none());
    }

    #[test]
    fn freelist_and_relay_list_round_trip() {
        let keys = Keys::generate();
        let e = freelist("loom-freelist", &[pk(1), pk(2)])
            .sign_with_keys(&keys)
            .expect("sign");
        assert_eq!(list_members(&e), vec![pk(1), pk(2)]);
        let address = freelist_address(&keys.public_key(), "loom-freelist");
        assert!(ListPointer::parse(&address).expect("address").matches(&e));
        let urls = vec![
            RelayUrl::parse("ws://127.0.0.1:7000").expect("url"),
            RelayUrl::parse("wss://relay.example").expect("url"),
        ];
        assert_eq!(relay_list_urls(&sign(relay_list(&urls))), urls);
        assert!(relay_list_urls(&e).is_empty());
    }
}
