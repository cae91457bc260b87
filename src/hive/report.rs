//! `ci report`'s work, for runner scripts: upload the workflow log to
//! Blossom (BUD-02, signed by the run's throwaway key) and publish the
//! kind 5402 workflow result signed by the same key.

use nostr_sdk::prelude::*;
use serde::Serialize;

use super::run::{status_for_exit, WorkflowResult};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::relays::{self, RelayOutcome};

/// What a runner reports, validated by [`Report::check`].
#[derive(Debug, Clone)]
pub struct Report {
    /// The run (`HIVE_CI_RUN_ID`).
    pub run: EventId,
    /// The status word; `None` derives it from the exit code.
    pub status: Option<String>,
    /// The workflow's exit code.
    pub exit_code: i64,
    /// Run time in seconds.
    pub duration: Option<f64>,
    /// The log body to upload.
    pub log: Option<Vec<u8>>,
    /// The Blossom server for the log (`HIVE_CI_BLOSSOM_SERVER`).
    pub blossom: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOutcome {
    /// The 5402's id (hex).
    pub id: String,
    /// The signed 5402.
    pub event: Event,
    /// Where the log went.
    pub log_url: Option<String>,
    /// One outcome per relay.
    pub relays: Vec<RelayOutcome>,
    /// How many relays accepted.
    pub accepted: usize,
}

impl Report {
    /// Refuse what cannot work before anything is uploaded or signed.
    pub fn check(&self, urls: &[RelayUrl]) -> Result<()> {
        if urls.is_empty() {
            return Err(Error::input(
                "no relays: pass --relay URL or set HIVE_CI_RELAYS",
            ));
        }
        if self.log.is_some() && self.blossom.as_deref().is_none_or(|b| b.trim().is_empty()) {
            return Err(Error::input(
                "a log needs a Blossom server: pass --blossom URL or set HIVE_CI_BLOSSOM_SERVER",
            ));
        }
        if let Some(b) = &self.blossom {
            crate::blossom::check_server(b)?;
        }
        if let Some(s) = &self.status {
            crate::protocol::check_text("--status", s).map_err(Error::input)?;
            if s.trim().is_empty() {
                return Err(Error::input("--status must not be empty"));
            }
        }
        Ok(())
    }

    /// The 5402 this report publishes, with the log's URL.
    pub fn result(&self, log_url: Option<String>) -> WorkflowResult {
        WorkflowResult {
            run: self.run,
            status: self
                .status
                .clone()
                .unwrap_or_else(|| status_for_exit(self.exit_code).to_string()),
            exit_code: Some(self.exit_code),
            duration: self.duration,
            log_url,
        }
    }
}

/// Upload the log (if any), sign the 5402 with `keys` and publish it to
/// `urls`, all within `deadline`.
pub async fn report(
    keys: &Keys,
    r: &Report,
    urls: &[RelayUrl],
    deadline: &Deadline,
) -> Result<ReportOutcome> {
    r.check(urls)?;
    let log_url = match (&r.log, &r.blossom) {
        (Some(body), Some(server)) => {
            let d = crate::blossom::upload(
                server,
                keys,
                body.clone(),
                Some("text/plain"),
                deadline.share(2),
            )
            .await?;
            Some(d.url)
        }
        _ => None,
    };
    let event = r
        .result(log_url.clone())
        .to_builder()
        .sign_with_keys(keys)
        .map_err(|e| Error::Runtime(format!("cannot sign the workflow result: {e}")))?;
    let outcomes = relays::publish(keys, &event, urls, deadline.remaining()).await;
    Ok(ReportOutcome {
        id: event.id.to_hex(),
        accepted: relays::accepted(&outcomes),
        event,
        log_url,
        relays: outcomes,
    })
}
