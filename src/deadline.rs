//! One time bound for a whole command. A [`Deadline`] is made once, when
//! the command starts (from `--timeout`, else the config's default), and
//! passed down: every network step gets [`Deadline::remaining`] (or a
//! share of it), and futures that may hang for good on a silent peer (mint
//! calls, relay lookups) run under [`Deadline::bound`].

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::format_duration;
use crate::error::{Error, Result};

/// The instant a command must be done by, and the bound it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    /// `total` from now.
    pub fn after(total: Duration) -> Self {
        Self::starting(Instant::now(), total)
    }

    /// `total` from `start` (when the command started).
    pub fn starting(start: Instant, total: Duration) -> Self {
        Deadline {
            at: start + total,
            total,
        }
    }

    /// The whole bound (what `--timeout` said).
    pub fn total(&self) -> Duration {
        self.total
    }

    /// What is left; zero once it passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether it passed.
    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// At most `cap` of what is left.
    pub fn capped(&self, cap: Duration) -> Duration {
        self.remaining().min(cap)
    }

    /// A fraction of what is left (`1/n`): for a lookup that must leave
    /// time for the steps after it (a publish after an advertisement).
    pub fn share(&self, n: u32) -> Duration {
        self.remaining() / n.max(1)
    }

    /// The deadline as a tokio instant (for `sleep_until`/`timeout_at`).
    pub fn instant(&self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.at)
    }

    /// The one-line error for a step that ran out of time: `timed out
    /// after 2s {doing}`.
    pub fn timed_out(&self, doing: &str) -> Error {
        Error::Runtime(timed_out_msg(self.total, doing))
    }

    /// Run `fut` until it ends or the deadline passes; then
    /// [`Deadline::timed_out`] with `doing`. Dropping a cdk wallet future
    /// half way is safe: its sagas are journaled in the wallet store and
    /// resumed the next time that mint's wallet is opened.
    pub async fn bound<T, F>(&self, doing: &str, fut: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        match tokio::time::timeout_at(self.instant(), fut).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out(doing)),
        }
    }
}

/// `timed out after 2s {doing}` (without a trailing space when `doing` is empty).
pub fn timed_out_msg(total: Duration, doing: &str) -> String {
    if doing.is_empty() {
        format!("timed out after {}", format_duration(total))
    } else {
        format!("timed out after {} {doing}", format_duration(total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_shrinks_and_saturates() {
        let d = Deadline::after(Duration::from_millis(50));
        assert!(d.remaining() <= Duration::from_millis(50));
        assert!(!d.expired());
        assert!(d.capped(Duration::from_millis(10)) <= Duration::from_millis(10));
        assert!(d.share(2) <= Duration::from_millis(25));
        std::thread::sleep(Duration::from_millis(60));
        assert!(d.expired());
        assert_eq!(d.remaining(), Duration::ZERO);
        assert_eq!(d.share(0), Duration::ZERO);
        assert_eq!(d.total(), Duration::from_millis(50));
    }

    #[test]
    fn bound_times_out_with_one_line() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let d = Deadline::after(Duration::from_millis(100));
        let started = Instant::now();
        let r: Result<()> = rt.block_on(d.bound(
            "waiting for mint http://127.0.0.1:1",
            std::future::pending(),
        ));
        let e = r.expect_err("timed out");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            e.to_string(),
            "timed out after 100ms waiting for mint http://127.0.0.1:1"
        );
        assert_eq!(e.exit_code(), 1);
        let ok: Result<u8> =
            rt.block_on(Deadline::after(Duration::from_secs(5)).bound("x", async { Ok(7) }));
        assert_eq!(ok.expect("in time"), 7);
    }
}
