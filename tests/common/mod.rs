//! Test support: every test gets its own loopback relays (real
//! nostr-relay-builder `LocalRelay`s on real websockets), its own temp
//! config/data dirs and keys, and drives the built `jobctl` binary.
//! Assertions look at what the relays actually stored.
//!
//! One file per fixture; every public name is re-exported here, so tests
//! `use common::*;` and need not know which file holds what:
//! - `relays`: `TestRelay`, write policies, `ClosedPort`, `Blackhole`, `publish`
//! - `env`: `TestEnv` (temp dirs, keys, the `jobctl` command and preset
//!   verbs such as `rerun_unpaid`), output readers, `dispatch`
//! - `worker`: `ScriptedWorker`, `ResultSpec`, `job_request`, `tags`, `now`
//! - `blobs`: `BlobServer`
//! - `tokens`: fake Cashu tokens, `fund`, `balance`
//! - `mint`: a real in-process cdk mint (`common::mint::TestMint`)
//! - `nutshell.rs`: a real Nutshell mint, included by `#[path]` where used
#![allow(dead_code, unused_imports)]

pub mod blobs;
pub mod env;
pub mod mint;
pub mod relays;
pub mod rng;
pub mod tokens;
pub mod worker;

pub use blobs::*;
pub use env::*;
pub use relays::*;
pub use rng::Rng;
pub use tokens::*;
pub use worker::*;

use std::sync::LazyLock;

use tokio::runtime::Runtime;

/// One runtime shared by every relay of a test binary; tests themselves
/// are plain blocking `#[test]`s that run the CLI as a child process.
pub static RT: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
});
