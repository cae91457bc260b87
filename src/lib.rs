//! jobctl: a Nostr-native job dispatcher for Loom workers.
//!
//! The library does the work and decides every rule; the `jobctl` binary
//! (`src/cli/`) parses flags, calls in here and renders. Data flows one
//! way: [`settings`] (flags, environment, config file) and [`keys`] ->
//! [`request`] (a job spec from the inputs) and [`payment_plan`] (price,
//! mint, lock, spent-check) -> [`protocol`] (the wire contract, pure) ->
//! [`journal`] (recorded before anything is sent) -> [`dispatch`] and
//! [`relays`] (publish, subscribe) -> reports the binary renders.
//! Following jobs: [`follow`], [`state`], [`tracking`], [`listing`],
//! [`detail`], [`roster`]. Money: [`payment`], [`wallet`]. The reference
//! worker: [`worker`]. Hive CI workflow runs: [`hive`], [`blossom`].
//! `docs/architecture.md` has the full map.

pub mod batch;
pub mod blobs;
pub mod blossom;
pub mod cancel;
pub mod config;
pub mod deadline;
pub mod detail;
pub mod dispatch;
pub mod error;
pub mod files;
pub mod follow;
pub mod hive;
pub mod job_state;
pub mod journal;
pub mod keys;
pub mod listing;
pub mod logs;
pub mod notice;
pub mod outbox;
pub mod payment;
pub mod payment_plan;
pub mod protocol;
pub mod reclaim;
pub mod relays;
pub mod republish;
pub mod request;
pub mod roster;
pub mod round;
pub mod settings;
pub mod state;
pub mod stats;
pub mod text;
pub mod tracking;
pub mod transport;
pub mod wallet;
pub mod worker;

pub use error::{Error, Result};
