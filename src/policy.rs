//! Client policy windows: when a worker counts as online and when a pending
//! job counts as stale. Decisions of jobctl, not part of the wire contract.

use nostr_sdk::prelude::*;

use crate::protocol::WorkerAd;

/// An advertisement younger than this makes a worker online.
pub const ONLINE_WINDOW_SECS: u64 = 5 * 60;
/// A job pending longer than this is stale.
pub const STALE_AFTER_SECS: u64 = 72 * 3600;

impl WorkerAd {
    /// Online when the advertisement is under 5 minutes old at `now`.
    pub fn is_online(&self, now: Timestamp) -> bool {
        now.as_secs().saturating_sub(self.at.as_secs()) < ONLINE_WINDOW_SECS
    }
}
