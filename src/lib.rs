//! jobctl: a Nostr-native job dispatcher for Loom workers.
//!
//! The library does the work; the `jobctl` binary parses flags and prints.
//! Modules, one concern each, in the order data flows through them:
//! [`config`] and [`keys`] (inputs), [`payment`] (tokens), [`protocol`]
//! (the wire format, pure), [`dispatch`] (build, sign, publish, report),
//! [`relays`] (the network), [`output`] (tables and JSON).

pub mod batch;
pub mod blobs;
pub mod cancel;
pub mod config;
pub mod deadline;
pub mod detail;
pub mod dispatch;
pub mod error;
pub mod follow;
pub mod job_state;
pub mod journal;
pub mod keys;
pub mod listing;
pub mod logs;
pub mod notice;
pub mod payment;
pub mod payment_plan;
pub mod policy;
pub mod protocol;
pub mod relays;
pub mod republish;
pub mod request;
pub mod roster;
pub mod settings;
pub mod state;
pub mod stats;
pub mod text;
pub mod tracking;
pub mod wallet;
pub mod worker;

pub use error::{Error, Result};
