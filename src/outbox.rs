//! Routing to a worker by its own relays (NIP-65 outbox model): parsing
//! and building kind 10002 relay lists, looking a worker's list up on the
//! configured relays (bounded), caching it in the journal (`relay_lists`
//! table, owned here), and deciding which extra relays a job goes to (the
//! worker's `read` inbox) and which extra relays its replies are read from
//! (the worker's `write` outbox). Policies only: nothing here prints.

use std::time::Duration;

use nostr_sdk::prelude::*;
use rusqlite::{params, OptionalExtension};

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::protocol::KIND_RELAY_LIST;
use crate::relays;

/// The journal migration creating the cache table (journal schema 4).
pub const MIGRATION: &str = r#"
    CREATE TABLE IF NOT EXISTS relay_lists (
        pubkey     TEXT PRIMARY KEY,
        event      TEXT,
        fetched_at INTEGER NOT NULL
    );
    "#;

/// How long (seconds) a relay list looked up on the relays is trusted
/// before a dispatch asks again. "No list" is cached too.
pub const RELAY_LIST_TTL: u64 = 3600;

/// At most this many relays are taken from one side of a relay list: a
/// hostile list cannot make a dispatch dial hundreds of hosts.
pub const RELAY_LIST_MAX: usize = 8;

/// At most this long for the relay-list lookup of one dispatch.
pub const LOOKUP_CAP: Duration = Duration::from_secs(2);

/// A pubkey's NIP-65 relay list: where it reads (its inbox) and where it
/// writes (its outbox).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayList {
    /// `read` relays (or unmarked): where to send events meant for it.
    pub read: Vec<RelayUrl>,
    /// `write` relays (or unmarked): where it publishes.
    pub write: Vec<RelayUrl>,
}

/// Parse a kind 10002 event's `r` tags; bad URLs and unknown markers are
/// skipped, each side capped at [`RELAY_LIST_MAX`]. `None` for another kind.
pub fn parse_relay_list(event: &Event) -> Option<RelayList> {
    if event.kind != Kind::Custom(KIND_RELAY_LIST) {
        return None;
    }
    let mut list = RelayList::default();
    for tag in event.tags.iter() {
        let t = tag.as_slice();
        if t.first().map(String::as_str) != Some("r") {
            continue;
        }
        let Some(url) = t.get(1).and_then(|u| RelayUrl::parse(u.trim()).ok()) else {
            continue;
        };
        let (read, write) = match t.get(2).map(String::as_str) {
            None | Some("") => (true, true),
            Some("read") => (true, false),
            Some("write") => (false, true),
            Some(_) => continue,
        };
        if read && list.read.len() < RELAY_LIST_MAX && !list.read.contains(&url) {
            list.read.push(url.clone());
        }
        if write && list.write.len() < RELAY_LIST_MAX && !list.write.contains(&url) {
            list.write.push(url);
        }
    }
    Some(list)
}

/// An unsigned kind 10002 relay list with `read` and `write` markers
/// (relays on both sides unmarked).
pub fn relay_list_builder(read: &[RelayUrl], write: &[RelayUrl]) -> EventBuilder {
    let tag = |u: &RelayUrl, marker: Option<&str>| {
        let mut v = vec![u.to_string()];
        v.extend(marker.map(str::to_string));
        Tag::custom(TagKind::Custom("r".into()), v)
    };
    let mut tags: Vec<Tag> = read
        .iter()
        .map(|u| tag(u, (!write.contains(u)).then_some("read")))
        .collect();
    tags.extend(
        write
            .iter()
            .filter(|u| !read.contains(u))
            .map(|u| tag(u, Some("write"))),
    );
    EventBuilder::new(Kind::Custom(KIND_RELAY_LIST), "").tags(tags)
}

/// Whether `a` and `b` name the same relay. `RelayUrl` equality already
/// ignores a trailing slash; this also treats `localhost` and the loopback
/// address as one, so a worker listing `ws://localhost:PORT` for a relay
/// the client knows as `ws://127.0.0.1:PORT` does not double it.
pub fn same_relay(a: &RelayUrl, b: &RelayUrl) -> bool {
    fn key(u: &RelayUrl) -> Option<(String, String, Option<u16>, String)> {
        let url = Url::parse(u.as_str()).ok()?;
        let host = match url.host_str().unwrap_or_default() {
            "localhost" | "[::1]" => "127.0.0.1".to_string(),
            h => h.to_ascii_lowercase(),
        };
        let path = url.path().trim_end_matches('/').to_string();
        Some((
            url.scheme().to_string(),
            host,
            url.port_or_known_default(),
            path,
        ))
    }
    a == b || (key(a).is_some() && key(a) == key(b))
}

/// `urls` less those that name a relay in `known`, deduplicated.
fn extras(urls: Vec<RelayUrl>, known: &[RelayUrl]) -> Vec<RelayUrl> {
    let mut out: Vec<RelayUrl> = Vec::new();
    for u in urls {
        if !known.iter().chain(&out).any(|k| same_relay(k, &u)) {
            out.push(u);
        }
    }
    out
}

/// The worker's inbox relays (NIP-65 `read`) that are not in `configured`.
pub fn inbox_extras(list: Option<&Event>, configured: &[RelayUrl]) -> Vec<RelayUrl> {
    let read = list.and_then(parse_relay_list).map(|l| l.read);
    extras(read.unwrap_or_default(), configured)
}

/// The worker's outbox relays (NIP-65 `write`) that are not in `configured`.
pub fn outbox_extras(list: Option<&Event>, configured: &[RelayUrl]) -> Vec<RelayUrl> {
    let write = list.and_then(parse_relay_list).map(|l| l.write);
    extras(write.unwrap_or_default(), configured)
}

/// A cached relay list of `pubkey` fetched at most `max_age_secs` ago:
/// `Some(None)` when the lookup found none, `None` when nothing fresh is
/// cached.
pub fn cached(
    journal: &Journal,
    pubkey: &PublicKey,
    max_age_secs: u64,
) -> Result<Option<Option<Event>>> {
    let row: Option<(Option<String>, i64)> = journal
        .sql()
        .query_row(
            "SELECT event, fetched_at FROM relay_lists WHERE pubkey = ?1",
            params![pubkey.to_hex()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(q)?;
    let Some((event, at)) = row else {
        return Ok(None);
    };
    let age = Timestamp::now().as_secs().saturating_sub(at.max(0) as u64);
    if age > max_age_secs {
        return Ok(None);
    }
    // A cached event that no longer parses or verifies is no list.
    Ok(Some(event.and_then(|e| {
        Event::from_json(e)
            .ok()
            .filter(|e| e.pubkey == *pubkey && e.verify().is_ok())
    })))
}

/// Cache the relay list of `pubkey` (`None`: it has none), keeping a newer
/// cached event over an older one.
pub fn cache(journal: &Journal, pubkey: &PublicKey, event: Option<&Event>) -> Result<()> {
    let now = Timestamp::now().as_secs() as i64;
    let keep_older = match (event, cached(journal, pubkey, u64::MAX)?) {
        (Some(new), Some(Some(old))) => old.created_at > new.created_at,
        _ => false,
    };
    let conn = journal.sql();
    if keep_older {
        conn.execute(
            "UPDATE relay_lists SET fetched_at = ?2 WHERE pubkey = ?1",
            params![pubkey.to_hex(), now],
        )
        .map_err(q)?;
        return Ok(());
    }
    conn.execute(
        "INSERT INTO relay_lists (pubkey, event, fetched_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(pubkey) DO UPDATE SET event = excluded.event, fetched_at = excluded.fetched_at",
        params![pubkey.to_hex(), event.map(|e| e.as_json()), now],
    )
    .map_err(q)?;
    Ok(())
}

fn q(e: rusqlite::Error) -> Error {
    Error::Journal(format!("relay list cache: {e}"))
}

/// The newest kind 10002 relay list of `pubkey` on `urls`, bounded by
/// `timeout`; the flag says whether every relay answered (so "none" means
/// none, and the answer may be cached).
pub async fn fetch_relay_list(
    client: &Client,
    urls: &[RelayUrl],
    pubkey: PublicKey,
    timeout: Duration,
) -> (Option<Event>, bool) {
    let filter = Filter::new()
        .kind(Kind::Custom(KIND_RELAY_LIST))
        .author(pubkey)
        .limit(1);
    let fetched = relays::fetch_reach(client, urls, vec![filter], timeout).await;
    let newest = fetched
        .events
        .into_iter()
        .filter(|e| e.pubkey == pubkey && e.kind == Kind::Custom(KIND_RELAY_LIST))
        .max_by_key(|e| e.created_at);
    (newest, fetched.reach.complete())
}

/// Where a dispatch goes besides the configured relays.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// The worker's relay list (cached or fetched), if it has one.
    pub list: Option<Event>,
    /// The worker's inbox relays that are not configured.
    pub inbox: Vec<RelayUrl>,
    /// A fresh lookup to cache: the list found (or none), when it is
    /// worth caching (found, or every relay answered "none").
    pub to_cache: Option<Option<Event>>,
}

/// The route from the relay list cached in `journal` for `worker`, when
/// one was fetched less than [`RELAY_LIST_TTL`] ago ("no list" included).
pub fn from_cache(
    journal: Option<&Journal>,
    worker: &PublicKey,
    relays: &[RelayUrl],
) -> Option<Route> {
    let list = match cached(journal?, worker, RELAY_LIST_TTL) {
        Ok(c) => c?,
        Err(e) => {
            tracing::debug!("relay list cache: {e}");
            return None;
        }
    };
    Some(Route {
        inbox: inbox_extras(list.as_ref(), relays),
        list,
        to_cache: None,
    })
}

/// The route from a fresh lookup of `worker`'s relay list on `relays`
/// through `client`, bounded by `timeout`.
pub async fn lookup(
    client: &Client,
    relays: &[RelayUrl],
    worker: PublicKey,
    timeout: Duration,
) -> Route {
    let (list, complete) = fetch_relay_list(client, relays, worker, timeout).await;
    Route {
        inbox: inbox_extras(list.as_ref(), relays),
        to_cache: (list.is_some() || complete).then(|| list.clone()),
        list,
    }
}

/// [`lookup`] over a client of its own, shut down after.
pub async fn lookup_alone(
    keys: &Keys,
    relays: &[RelayUrl],
    worker: PublicKey,
    timeout: Duration,
) -> Route {
    let client = relays::client(keys, relays).await;
    let route = lookup(&client, relays, worker, timeout).await;
    relays::shutdown(&client).await;
    route
}

/// The route of one dispatch to `worker` (`on`: routing is not turned
/// off): the cached one when fresh, else a lookup on `relays` through the
/// dispatch's own pool `client`, within a third of `deadline`, at most
/// [`LOOKUP_CAP`]; none when off.
pub async fn route(
    on: bool,
    journal: &Journal,
    client: &Client,
    relays: &[RelayUrl],
    worker: PublicKey,
    deadline: Deadline,
) -> Route {
    match known_route(on, Some(journal), &worker, relays) {
        Some(route) => route,
        None => lookup_within(client, relays, worker, deadline).await,
    }
}

/// The route known without asking a relay: none when routing is off
/// (`on` false), else the journal's fresh cached one, if any.
pub fn known_route(
    on: bool,
    journal: Option<&Journal>,
    worker: &PublicKey,
    relays: &[RelayUrl],
) -> Option<Route> {
    if !on {
        return Some(Route::default());
    }
    from_cache(journal, worker, relays)
}

/// [`lookup`] within a third of `deadline`, at most [`LOOKUP_CAP`].
pub async fn lookup_within(
    client: &Client,
    relays: &[RelayUrl],
    worker: PublicKey,
    deadline: Deadline,
) -> Route {
    let budget = deadline.share(3).min(LOOKUP_CAP);
    lookup(client, relays, worker, budget).await
}

/// `configured` followed by the route's inbox relays: where the job goes.
pub fn targets(configured: &[RelayUrl], route: &Route) -> Vec<RelayUrl> {
    configured.iter().chain(&route.inbox).cloned().collect()
}

/// Remember a fresh lookup of `worker`'s list (best effort: the cache is
/// an optimisation, its failure is logged).
pub fn remember(journal: &Journal, worker: &PublicKey, route: &Route) {
    if let Some(list) = &route.to_cache {
        if let Err(e) = cache(journal, worker, list.as_ref()) {
            tracing::debug!("cannot cache the relay list: {e}");
        }
    }
}

/// The `write` (outbox) relays of the workers of the journaled jobs in
/// `ids`, from their cached relay lists (however old: the best guess),
/// that are not in `configured`: where those workers publish replies.
pub fn worker_write_relays(
    journal: &Journal,
    ids: &[EventId],
    configured: &[RelayUrl],
) -> Vec<RelayUrl> {
    let mut out: Vec<RelayUrl> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        let Ok(Some(rec)) = journal.get(id) else {
            continue;
        };
        let Ok(worker) = PublicKey::parse(&rec.worker) else {
            continue;
        };
        if !seen.insert(worker) {
            continue;
        }
        let Ok(Some(list)) = cached(journal, &worker, u64::MAX) else {
            continue;
        };
        let known: Vec<RelayUrl> = configured.iter().chain(&out).cloned().collect();
        out.extend(outbox_extras(list.as_ref(), &known));
    }
    out
}

/// `urls` plus, when `on` (config `outbox`), the outbox relays of the
/// workers of the journaled jobs `ids` (see [`worker_write_relays`]).
pub fn read_relays(
    journal: Option<&Journal>,
    on: bool,
    ids: &[EventId],
    mut urls: Vec<RelayUrl>,
) -> Vec<RelayUrl> {
    if let (Some(j), true) = (journal, on) {
        let extra = worker_write_relays(j, ids, &urls);
        urls.extend(extra);
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RelayUrl {
        RelayUrl::parse(s).expect("url")
    }

    #[test]
    fn relay_list_round_trip_and_caps() {
        let keys = Keys::generate();
        let (a, b, c) = (
            url("ws://127.0.0.1:1"),
            url("ws://127.0.0.1:2"),
            url("ws://127.0.0.1:3"),
        );
        let ev = relay_list_builder(&[a.clone(), b.clone()], &[b.clone(), c.clone()])
            .sign_with_keys(&keys)
            .expect("sign");
        let l = parse_relay_list(&ev).expect("list");
        assert_eq!(l.read, vec![a.clone(), b.clone()]);
        assert_eq!(l.write, vec![b, c]);
        let many: Vec<Tag> = (0..50)
            .map(|i| {
                Tag::parse(["r".to_string(), format!("ws://127.0.0.1:{}", 100 + i)]).expect("tag")
            })
            .chain([
                Tag::parse(["r", "not a url"]).expect("tag"),
                Tag::parse(["r", "ws://x.y", "odd"]).expect("tag"),
            ])
            .collect();
        let ev = EventBuilder::new(Kind::Custom(KIND_RELAY_LIST), "")
            .tags(many)
            .sign_with_keys(&keys)
            .expect("sign");
        let l = parse_relay_list(&ev).expect("list");
        assert_eq!(l.read.len(), RELAY_LIST_MAX);
        assert_eq!(l.write.len(), RELAY_LIST_MAX);
        let other = EventBuilder::text_note("x")
            .sign_with_keys(&keys)
            .expect("sign");
        assert!(parse_relay_list(&other).is_none());
    }

    #[test]
    fn the_same_relay_spelled_differently_is_not_an_extra() {
        let keys = Keys::generate();
        let configured = [url("ws://127.0.0.1:7000")];
        let ev = relay_list_builder(
            &[
                url("ws://127.0.0.1:7000/"),
                url("ws://localhost:7000"),
                url("ws://127.0.0.1:7001"),
                url("ws://localhost:7001/"),
            ],
            &[],
        )
        .sign_with_keys(&keys)
        .expect("sign");
        assert_eq!(
            inbox_extras(Some(&ev), &configured),
            vec![url("ws://127.0.0.1:7001")]
        );
        assert!(outbox_extras(Some(&ev), &configured).is_empty());
    }

    #[test]
    fn cache_keeps_the_newest_and_expires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(&dir.path().join("j.sqlite")).expect("open");
        let w = Keys::generate();
        let pk = w.public_key();
        assert!(cached(&j, &pk, 3600).expect("read").is_none());
        cache(&j, &pk, None).expect("cache");
        assert_eq!(cached(&j, &pk, 3600).expect("read"), Some(None));
        let list = |at: u64| {
            relay_list_builder(&[url("ws://127.0.0.1:9")], &[])
                .custom_created_at(Timestamp::from(at))
                .sign_with_keys(&w)
                .expect("sign")
        };
        let (old, new) = (list(1_000), list(2_000));
        cache(&j, &pk, Some(&new)).expect("cache");
        cache(&j, &pk, Some(&old)).expect("cache");
        let got = cached(&j, &pk, 3600)
            .expect("read")
            .flatten()
            .expect("list");
        assert_eq!(got.id, new.id);
        j.sql()
            .execute("UPDATE relay_lists SET fetched_at = fetched_at - 7200", [])
            .expect("age");
        assert!(cached(&j, &pk, 3600).expect("read").is_none());
    }
}
