//! How the worker makes itself known: its advertisement (kind 10100), its
//! relay list (NIP-65, kind 10002) and its freelist (NIP-51, kind 30000),
//! all built by [`crate::protocol`].

use nostr_sdk::prelude::*;

use super::shared::Shared;
use super::WorkerConfig;
use crate::protocol::{freelist, freelist_address, relay_list, AdSpec};

/// The `d` of the worker's freelist (NIP-51 follow set, kind 30000).
pub const FREELIST_D: &str = "loom-freelist";

/// The advertisement event of worker `me`.
pub fn advertisement(cfg: &WorkerConfig, me: &PublicKey, queue_depth: usize) -> EventBuilder {
    AdSpec {
        name: cfg.name.clone(),
        description: "jobctl reference worker".into(),
        max_concurrent_jobs: cfg.concurrency as u64,
        current_queue_depth: queue_depth as u64,
        architecture: std::env::consts::ARCH.into(),
        software: vec![("jobctl".into(), env!("CARGO_PKG_VERSION").into())],
        min_duration: cfg.min_duration,
        max_duration: cfg.max_duration,
        freelist: (!cfg.freelist.is_empty())
            .then(|| (freelist_address(me, FREELIST_D), cfg.freelist_timeout)),
        price_per_second: cfg.price_per_second,
        mints: cfg.mints.clone(),
    }
    .to_builder()
}

/// The relay list, the freelist (when there is one) and the ad, sent
/// together: a silent relay costs one timeout, not one per event.
pub(super) async fn announce(shared: &Shared, relays: &[RelayUrl]) {
    let me = shared.keys.public_key();
    let members: Vec<PublicKey> = shared
        .cfg
        .freelist
        .iter()
        .filter_map(|k| crate::config::parse_pubkey(k).ok())
        .collect();
    let list = async {
        if !members.is_empty() {
            shared.publish(freelist(FREELIST_D, &members)).await;
        }
    };
    tokio::join!(
        shared.publish(relay_list(relays)),
        list,
        shared.publish(advertisement(&shared.cfg, &me, 0)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::WorkerAd;

    #[test]
    fn the_ad_reads_back_as_configured() {
        let keys = Keys::generate();
        let cfg = WorkerConfig {
            mints: vec!["http://m".into()],
            price_per_second: 3,
            freelist: vec![keys.public_key().to_hex()],
            ..Default::default()
        };
        let e = advertisement(&cfg, &keys.public_key(), 4)
            .sign_with_keys(&keys)
            .expect("sign");
        let ad = WorkerAd::from_event(&e).expect("ad");
        assert_eq!(ad.name, cfg.name);
        assert_eq!(
            (ad.max_concurrent_jobs, ad.current_queue_depth),
            (Some(2), Some(4))
        );
        assert_eq!(ad.prices[0].rate, 3.0);
        assert_eq!(
            ad.access.freelist_event,
            Some(freelist_address(&keys.public_key(), FREELIST_D))
        );
        assert_eq!(ad.access.freelist_timeout, Some(600));
    }
}
