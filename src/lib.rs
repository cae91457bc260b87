//! jobctl: a Nostr-native job dispatcher for Loom workers.
//!
//! The library does the work; the `jobctl` binary parses flags and prints.
//! Modules, one concern each, in the order data flows through them:
//! [`config`] and [`keys`] (inputs), [`payment`] (tokens), [`protocol`]
//! (the wire format, pure), [`dispatch`] (build, sign, publish, report),
//! [`relays`] (the network), [`output`] (tables and JSON).

pub mod blobs;
pub mod config;
pub mod deadline;
pub mod dispatch;
pub mod error;
pub mod files;
pub mod follow;
pub mod journal;
pub mod keys;
pub mod logs;
pub mod payment;
pub mod protocol;
pub mod reclaim;
pub mod relays;
pub mod settings;
pub mod state;
pub mod text;
pub mod wallet;
pub mod worker;

pub use error::{Error, Result};
