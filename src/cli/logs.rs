//! `jobctl logs`: print a job's stdout (or stderr) log, or a workflow
//! run's log, to stdout, verified against its content hash when the URL
//! carries one.

use std::io::Write;

use clap::Args;

use jobctl::error::{exit, Error, Result};
use jobctl::hive::follow::RunLink;
use jobctl::logs as joblogs;

use super::read::{load_one, ReadArgs};
use super::render::{clip, short_id};
use super::{runtime, Ctx};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Job id (hex, note1, nevent1), or `-` for the first id on stdin; a
    /// workflow run's id (kind 5401) prints the workflow log its result
    /// (kind 5402) names.
    #[arg(value_name = "JOB|RUN")]
    pub job: String,

    /// Print the stderr log instead of stdout (of a run: its job's stderr).
    #[arg(long)]
    pub stderr: bool,

    #[command(flatten)]
    pub read: ReadArgs,
}

pub fn run(ctx: &Ctx, a: LogsArgs) -> Result<i32> {
    let (_cfg, _urls, t, run) = load_one(ctx, &a.job, &a.read)?;
    if let Some(run) = run.filter(|_| !a.stderr) {
        return workflow_log(ctx, &run, &t);
    }
    let which = if a.stderr { "stderr" } else { "stdout" };
    let job = short_id(&t.id.to_hex());
    let result = t.result().ok_or_else(|| {
        Error::Runtime(format!(
            "job {job} has no result yet (state: {})",
            t.state()
        ))
    })?;
    let url = if a.stderr {
        &result.stderr
    } else {
        &result.stdout
    };
    let url = url
        .as_deref()
        .ok_or_else(|| Error::Runtime(format!("the result of job {job} has no {which} URL")))?;
    // The log's bytes go to stdout as they are (no line added), streamed.
    let mut out = ctx.out();
    if !jobctl::protocol::is_url(url) {
        // Some workers put the output itself in the tag: print it as given.
        // There is no content hash to check it against.
        ctx.warn(&format!(
            "the worker sent {which} inline, not as a URL: printed as given, unverifiable (no hash to check)"
        ));
        out.write_all(url.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| Error::Runtime(format!("cannot write to stdout: {e}")))?;
        return Ok(exit::OK);
    }
    let (file, total) = download(ctx, url)?;
    joblogs::copy_out(file, total, &mut *out)?;
    Ok(exit::OK)
}

/// `logs RUN`: the workflow log its 5402 names, verified against the
/// sha256 in the URL when there is one.
fn workflow_log(ctx: &Ctx, run: &RunLink, job: &jobctl::state::JobTracker) -> Result<i32> {
    let id = short_id(&run.run.id.to_hex());
    let Some(result) = &run.result else {
        return Err(Error::Runtime(format!(
            "workflow run {id} has no workflow result (kind 5402) yet (state: {}); \
             `jobctl logs {}` prints its job's output",
            run.state(Some(job)).0,
            job.id
        )));
    };
    let url =
        result.result.log_url.as_deref().ok_or_else(|| {
            Error::Runtime(format!("the workflow result of run {id} has no log_url"))
        })?;
    if !jobctl::protocol::is_url(url) {
        return Err(Error::Runtime(format!(
            "the workflow result of run {id} has a log_url that is not a URL"
        )));
    }
    let (file, total) = download(ctx, url)?;
    joblogs::copy_out(file, total, &mut *ctx.out())?;
    Ok(exit::OK)
}

/// Download into a spool file under the command's deadline (the HTTP
/// client's own whole-second timer must not beat it), verified before the
/// first byte is printed, with memory bounded whatever the log's size.
fn download(ctx: &Ctx, url: &str) -> Result<(std::fs::File, u64)> {
    let deadline = ctx.deadline();
    let budget = deadline.remaining() + std::time::Duration::from_secs(2);
    let owned = url.to_string();
    runtime()?.block_on(
        deadline.bound(&format!("downloading {}", clip(url, 200)), async move {
            tokio::task::spawn_blocking(move || joblogs::download(&owned, budget))
                .await
                .map_err(|e| Error::Runtime(format!("log download task failed: {e}")))?
        }),
    )
}
