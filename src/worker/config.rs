//! The worker's configuration (`worker.toml`): what it runs, for whom, at
//! what price, from which mints, and its limits. Every field has a safe
//! default; [`WorkerConfig::from_toml`] refuses a bad file before start.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::wallet;

/// How the worker behaves. Every field has a safe default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Name in the advertisement.
    pub name: String,
    /// Commands it runs (no shell unless listed).
    pub allow_cmds: Vec<String>,
    /// Clients allowed to submit (empty: anyone).
    pub allow_clients: Vec<String>,
    /// Clients that may submit unpaid jobs.
    pub unpaid_clients: Vec<String>,
    /// Price in sat per second (0: free worker, unpaid jobs from `unpaid_clients`).
    pub price_per_second: u64,
    /// Mints it accepts payment from.
    pub mints: Vec<String>,
    /// Minimum billed duration (seconds).
    pub min_duration: u64,
    /// Hard limit on a run (seconds).
    pub max_duration: u64,
    /// Jobs run at once; the rest queue.
    pub concurrency: usize,
    /// Where logs are kept (served by the blob server).
    pub blob_dir: Option<PathBuf>,
    /// Blob server address (port 0 picks one).
    pub blob_addr: SocketAddr,
    /// Wallet directory [default: the jobctl wallet dir].
    pub wallet_dir: Option<PathBuf>,
    /// Seconds between advertisements.
    pub advertise_every: u64,
    /// Upper bound, in seconds, on every single call to a mint (opening
    /// the wallet, taking a payment, each step of making change).
    pub mint_timeout: u64,
    /// On start, also take jobs addressed to this worker that were
    /// published up to this many seconds ago and have no terminal status
    /// or result from it yet (0: only jobs published from now on).
    pub catch_up: u64,
    /// How change tokens are written: `cashuA` (V3, default: every client
    /// decodes it offline) or `cashuB` (V4).
    pub token_format: String,
    /// Pubkeys whose unpaid jobs run free (published as a NIP-51 follow
    /// set, kind 30000, and named in the ad as `freelist_event`).
    pub freelist: Vec<String>,
    /// Longest free run for a freelisted pubkey, in seconds (advertised).
    pub freelist_timeout: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            name: "jobctl reference worker".into(),
            allow_cmds: vec!["act".into()],
            allow_clients: vec![],
            unpaid_clients: vec![],
            price_per_second: 1,
            mints: vec![],
            min_duration: 10,
            max_duration: 3600,
            concurrency: 2,
            blob_dir: None,
            blob_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            wallet_dir: None,
            advertise_every: 120,
            mint_timeout: 30,
            catch_up: 24 * 3600,
            token_format: "cashuA".into(),
            freelist: vec![],
            freelist_timeout: 600,
        }
    }
}
impl WorkerConfig {
    /// Parse a worker config file (TOML).
    pub fn from_toml(path: &std::path::Path, text: &str) -> Result<Self> {
        let c: WorkerConfig = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            msg: e.message().to_string(),
        })?;
        c.validate().map_err(|msg| Error::Config {
            path: path.to_path_buf(),
            msg,
        })?;
        Ok(c)
    }

    /// Why the configuration cannot run, if it cannot.
    pub(super) fn validate(&self) -> std::result::Result<(), String> {
        if self.concurrency == 0 {
            return Err("concurrency: must be at least 1".into());
        }
        if self.mint_timeout == 0 {
            return Err("mint_timeout: must be at least 1 second".into());
        }
        if self.max_duration == 0 || self.min_duration > self.max_duration {
            return Err("min_duration/max_duration: need 0 < min <= max".into());
        }
        if self.price_per_second > 0 && self.mints.is_empty() {
            return Err("mints: a paid worker must accept at least one mint".into());
        }
        for k in self.allow_clients.iter().chain(&self.unpaid_clients) {
            crate::config::parse_pubkey(k).map_err(|e| format!("clients: {e}"))?;
        }
        for k in &self.freelist {
            crate::config::parse_pubkey(k).map_err(|e| format!("freelist: {e}"))?;
        }
        if self.freelist_timeout == 0 {
            return Err("freelist_timeout: must be at least 1 second".into());
        }
        self.token_format
            .parse::<wallet::TokenFormat>()
            .map_err(|e| format!("token_format: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds_mint_calls_and_catches_up_by_default() {
        let d = WorkerConfig::default();
        assert_eq!(d.mint_timeout, 30);
        assert_eq!(d.catch_up, 24 * 3600);
        let p = std::path::Path::new("w.toml");
        let c = WorkerConfig::from_toml(
            p,
            "mints = [\"http://m\"]\ncatch_up = 0\nmint_timeout = 5\n",
        )
        .expect("valid");
        assert_eq!((c.catch_up, c.mint_timeout), (0, 5));
        let e = WorkerConfig::from_toml(p, "mints = [\"http://m\"]\nmint_timeout = 0\n")
            .expect_err("zero timeout");
        assert!(e.to_string().contains("mint_timeout"), "{e}");
    }
}
