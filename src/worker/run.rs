//! Running one job's command: no shell, a clean environment (PATH, the
//! job's env and decrypted secrets), the request's content as stdin, a
//! time limit, killed on shutdown; stdout and stderr kept as blobs.

use std::time::{Duration, Instant};

use nostr_sdk::prelude::*;

use super::shared::Shared;
use crate::protocol::{JobRequest, ResultReport};

/// Run `req` for at most `limit`; what the result reports (without change).
pub(super) async fn run_job(
    shared: &Shared,
    job: &Event,
    req: &JobRequest,
    limit: Duration,
) -> ResultReport {
    let mut cmd = command(shared, job, req);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let url = shared
                .store
                .put(format!("cannot start {}: {e}\n", req.cmd).as_bytes())
                .ok();
            return ResultReport {
                exit_code: 127,
                duration: started.elapsed().as_secs_f64(),
                stderr: url.map(|h| format!("{}/{h}", shared.blob_base)),
                ..Default::default()
            };
        }
    };
    // The request's content is the command's stdin (swarmstr's
    // convention), written while the output is read, then closed.
    if let Some(mut stdin) = child.stdin.take() {
        let input = req.content.clone().into_bytes();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        });
    }
    let mut shutdown = shared.shutdown.clone();
    let waited = tokio::select! {
        r = tokio::time::timeout(limit, child.wait_with_output()) => Some(r),
        _ = shutdown.changed() => None,
    };
    let duration = started.elapsed().as_secs_f64();
    let (exit_code, out, err) = ended(waited, limit);
    let url = |b: &[u8]| {
        shared
            .store
            .put(b)
            .ok()
            .map(|h| format!("{}/{h}", shared.blob_base))
    };
    ResultReport {
        exit_code,
        duration,
        stdout: url(&out),
        stderr: url(&err),
        ..Default::default()
    }
}

/// The command, without a shell, in a clean environment.
fn command(shared: &Shared, job: &Event, req: &JobRequest) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&req.cmd);
    cmd.args(&req.args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(if req.content.is_empty() {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::piped()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in &req.env {
        cmd.env(k, v);
    }
    for (k, ct) in &req.secrets {
        match nip44::decrypt(shared.keys.secret_key(), &job.pubkey, ct) {
            Ok(v) => {
                cmd.env(k, v);
            }
            Err(e) => tracing::warn!(job = %job.id, "cannot decrypt secret {k}: {e}"),
        }
    }
    cmd
}

/// How the wait ended: `None` is a shutdown, `Some(Err)` the time limit.
type Waited = Option<Result<std::io::Result<std::process::Output>, tokio::time::error::Elapsed>>;

/// Exit code, stdout and stderr of a finished, failed, timed-out or
/// shut-down run.
fn ended(waited: Waited, limit: Duration) -> (i64, Vec<u8>, Vec<u8>) {
    match waited {
        Some(Ok(Ok(o))) => (
            o.status.code().map(i64::from).unwrap_or(-1),
            o.stdout,
            o.stderr,
        ),
        Some(Ok(Err(e))) => (-1, Vec::new(), format!("wait failed: {e}\n").into_bytes()),
        Some(Err(_)) => (
            124,
            Vec::new(),
            format!(
                "killed after {}s (paid-for or maximum duration)\n",
                limit.as_secs()
            )
            .into_bytes(),
        ),
        None => (
            143,
            Vec::new(),
            b"killed: the worker is shutting down\n".to_vec(),
        ),
    }
}
