//! What `rerun`'s flags resolve to before the pipeline runs: the job
//! inputs (a batch line's defaults too), the payment flags and the token
//! handed in.

use jobctl::config::Config;
use jobctl::error::{Error, Result};
use jobctl::payment::PaymentToken;
use jobctl::payment_plan::PaymentFlags;
use jobctl::request::{self, JobInputs};

use super::{read_stdin, RerunArgs};

/// The job inputs the flags give (a batch line's defaults too).
pub(crate) fn inputs(a: &RerunArgs) -> JobInputs {
    JobInputs {
        worker: a.worker.clone(),
        p_tag: a.p_tag.clone(),
        cmd: a.cmd.clone(),
        args: a.args.clone(),
        env: a.env.clone(),
        secrets: a.secrets.clone(),
        run: a.run.clone(),
    }
}

/// The payment flags; the token format falls back to the config's.
pub(super) fn payment_flags(cfg: &Config, a: &RerunArgs) -> PaymentFlags {
    PaymentFlags {
        amount: a.amount,
        mint: a.mint.clone(),
        max_price: a.max_price,
        duration: a.duration,
        lock: a.lock,
        refund_after: a.refund_after.clone(),
        no_check: a.no_check,
        require_check: a.require_check,
        strict: a.strict,
        token_format: a.token_format.unwrap_or(cfg.token_format),
    }
}

/// The token from `--token`, `--token -` or `$JOBCTL_TOKEN`; `None` only
/// with `--unpaid`.
pub(super) fn token(a: &RerunArgs) -> Result<Option<PaymentToken>> {
    if a.unpaid {
        return Ok(None);
    }
    let raw = match a.token.clone().or_else(request::env_token).as_deref() {
        Some("-") => read_stdin("the token")?,
        Some(t) => t.to_string(),
        None => {
            return Err(Error::input(
                "no payment token: pass --token (or `--token -` for stdin, or $JOBCTL_TOKEN), \
                 or --unpaid for a job without payment",
            ))
        }
    };
    PaymentToken::parse(&raw).map(Some)
}
