//! What `workers` shows: the advertised workers with the client's
//! decisions about each (online within [`ONLINE_WINDOW_SECS`], free for
//! your key by its freelist, whitelisted, unnamed), filtered by the
//! `--online` and `--mint` wishes. Returns data; rendering is the caller's.

use std::collections::HashMap;

use nostr_sdk::prelude::*;

use crate::deadline::Deadline;
use crate::follow;
use crate::protocol::WorkerAd;
use crate::relays::{self, Reach};

/// An advertisement younger than this (5 minutes) makes a worker online:
/// a client policy, not part of the wire.
pub const ONLINE_WINDOW_SECS: u64 = 5 * 60;

/// Whether `ad` is under [`ONLINE_WINDOW_SECS`] old at `now`.
pub fn is_online(ad: &WorkerAd, now: Timestamp) -> bool {
    now.as_secs().saturating_sub(ad.at.as_secs()) < ONLINE_WINDOW_SECS
}

/// What a worker offers your key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForYou {
    /// Your key is on its freelist: jobs run without payment.
    Free,
    /// It says it runs only whitelisted keys.
    Whitelist,
    /// Nothing special: paid jobs.
    Paid,
}

/// One worker and the decisions about it.
#[derive(Debug, Clone)]
pub struct WorkerRow {
    /// Its newest advertisement.
    pub ad: WorkerAd,
    /// Advertised within the online window.
    pub online: bool,
    /// Its advertisement has no name.
    pub unnamed: bool,
    /// Why it is free for your key, when it is.
    pub free_reason: Option<String>,
}

impl WorkerRow {
    /// What it offers your key.
    pub fn for_you(&self) -> ForYou {
        if self.free_reason.is_some() {
            ForYou::Free
        } else if self.ad.access.is_whitelisted == Some(true) {
            ForYou::Whitelist
        } else {
            ForYou::Paid
        }
    }
}

/// What `workers` wants.
#[derive(Debug, Clone, Default)]
pub struct Wanted<'a> {
    /// Only workers online now.
    pub online: bool,
    /// Only workers accepting this mint.
    pub mint: Option<&'a str>,
    /// Your key, for "free".
    pub me: Option<PublicKey>,
}

/// The rows for `ads`, in their order, that match `want` at `now`;
/// `lists` are the freelists fetched with [`follow::list_members_of`].
pub fn rows(
    ads: Vec<WorkerAd>,
    want: &Wanted<'_>,
    lists: &HashMap<String, Vec<PublicKey>>,
    now: Timestamp,
) -> Vec<WorkerRow> {
    ads.into_iter()
        .filter(|w| !want.online || is_online(w, now))
        .filter(|w| want.mint.is_none_or(|m| w.accepts_mint(m)))
        .map(|ad| WorkerRow {
            online: is_online(&ad, now),
            unnamed: ad.name.trim().is_empty(),
            free_reason: want.me.and_then(|m| follow::free_reason(&ad, &m, lists)),
            ad,
        })
        .collect()
}

/// The distinct freelist pointers of `ads`, sorted.
pub fn freelists(ads: &[WorkerAd]) -> Vec<String> {
    let mut pointers: Vec<String> = ads
        .iter()
        .filter_map(|a| a.access.freelist_event.clone())
        .collect();
    pointers.sort();
    pointers.dedup();
    pointers
}

/// What the relays returned for `workers`.
#[derive(Debug)]
pub struct Fetched {
    /// The newest advertisement of each worker, newest first.
    pub ads: Vec<WorkerAd>,
    /// Which relays answered.
    pub reach: Reach,
    /// The freelists' members, by pointer.
    pub lists: HashMap<String, Vec<PublicKey>>,
}

/// Fetch every advertisement, then (only with a key `me`, with what is
/// left of `deadline`) the freelists they point to.
pub async fn fetch(
    client: &Client,
    urls: &[RelayUrl],
    me: Option<PublicKey>,
    deadline: &Deadline,
) -> Fetched {
    let (ads, reach) = follow::workers_reach(client, urls, None, deadline.remaining()).await;
    let pointers = freelists(&ads);
    let lists = if me.is_some() && !pointers.is_empty() && !deadline.expired() {
        follow::list_members_of(client, urls, &pointers, deadline.remaining()).await
    } else {
        HashMap::new()
    };
    relays::shutdown(client).await;
    Fetched { ads, reach, lists }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::KIND_WORKER_AD;

    fn ad(keys: &Keys, content: &str, tags: Vec<Tag>, at: u64) -> WorkerAd {
        let ev = EventBuilder::new(Kind::Custom(KIND_WORKER_AD), content)
            .tags(tags)
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(keys)
            .expect("sign");
        WorkerAd::from_event(&ev).expect("ad")
    }

    #[test]
    fn online_window_mint_freelist_and_unnamed_decisions() {
        let (a, b, me) = (Keys::generate(), Keys::generate(), Keys::generate());
        let price = Tag::custom(
            TagKind::Custom("price".into()),
            ["https://mint.example", "1", "sat"].map(String::from),
        );
        let pointer = format!("30000:{}:free", a.public_key().to_hex());
        let fresh = ad(
            &a,
            &format!(r#"{{"name":"alpha","freelist_event":"{pointer}"}}"#),
            vec![price],
            1_000,
        );
        let old = ad(
            &b,
            r#"{"is_whitelisted":true}"#,
            vec![],
            1_000 - ONLINE_WINDOW_SECS,
        );
        let lists = HashMap::from([(pointer.clone(), vec![me.public_key()])]);
        assert_eq!(freelists(&[fresh.clone(), old.clone()]), vec![pointer]);
        let want = Wanted {
            me: Some(me.public_key()),
            ..Wanted::default()
        };
        let all = rows(
            vec![fresh.clone(), old.clone()],
            &want,
            &lists,
            Timestamp::from(1_000),
        );
        assert_eq!(all.len(), 2);
        assert!(all[0].online && !all[0].unnamed);
        assert_eq!(all[0].for_you(), ForYou::Free);
        assert!(!all[1].online && all[1].unnamed);
        assert_eq!(all[1].for_you(), ForYou::Whitelist);
        let online = Wanted {
            online: true,
            ..Wanted::default()
        };
        let only = rows(
            vec![fresh.clone(), old.clone()],
            &online,
            &lists,
            Timestamp::from(1_000),
        );
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].for_you(), ForYou::Paid, "no key, nothing free");
        let mint = Wanted {
            mint: Some("https://mint.example/"),
            ..Wanted::default()
        };
        assert_eq!(
            rows(vec![fresh, old], &mint, &lists, Timestamp::from(1_000)).len(),
            1
        );
    }
}
