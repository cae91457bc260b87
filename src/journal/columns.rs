//! The journal's typed text columns: what a reclaim was (`claims.kind`),
//! how it ended (`claims.status`) and where a wallet-made token is
//! (`sends.state`). Each is stored as the same lowercase text as always
//! ([`as_str`](SendState::as_str)); reading text that is none of them is an
//! error, never a guess. The job state is [`crate::job_state::JobState`].

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::error::{Error, Result};

/// An enum stored as one of a fixed set of words.
macro_rules! text_column {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::Journal(format!(concat!("`{}` is not a ", $what), s))),
                }
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: Error| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

text_column!(
    /// What a reclaim took back.
    ClaimKind, "reclaim kind" {
        /// Change from the job's result.
        Change = "change",
        /// The job's own (unlocked) payment.
        Payment = "payment",
        /// The job's payment locked to the worker, after its locktime.
        Refund = "refund",
    }
);

text_column!(
    /// How a reclaim attempt ended. `claimed` and `spent` are final (one
    /// per job); `failed` may be retried.
    ClaimStatus, "reclaim status" {
        /// Credited to the wallet.
        Claimed = "claimed",
        /// Already spent: not recovered.
        Spent = "spent",
        /// The attempt failed (mint unreachable...).
        Failed = "failed",
    }
);

impl ClaimStatus {
    /// `claimed` or `spent`: the job cannot be reclaimed again.
    pub fn is_final(self) -> bool {
        matches!(self, ClaimStatus::Claimed | ClaimStatus::Spent)
    }
}

text_column!(
    /// Where a token the wallet made is.
    SendState, "send state" {
        /// Recorded before the mint was asked.
        Prepared = "prepared",
        /// The mint made the token.
        Created = "created",
        /// In a journaled job (same transaction as the job row).
        Journaled = "journaled",
        /// Printed by `wallet send`.
        Delivered = "delivered",
        /// Cut off, then taken back into the wallet.
        Reclaimed = "reclaimed",
        /// Already spent when checked.
        Spent = "spent",
        /// Making it failed.
        Failed = "failed",
        /// Interrupted before a token was handed out; nothing in flight.
        Abandoned = "abandoned",
        /// Locked to a worker and never journaled: refundable later.
        Stranded = "stranded",
    }
);

impl SendState {
    /// `prepared` or `created`: cut off before it reached a job or a user.
    pub fn is_unfinished(self) -> bool {
        matches!(self, SendState::Prepared | SendState::Created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + FromStr<Err = Error> + fmt::Display,
    {
        for v in all {
            let text = v.to_string();
            assert_eq!(text.parse::<T>().ok(), Some(*v), "{text}");
        }
    }

    #[test]
    fn enums_round_trip_through_their_text() {
        round_trip(ClaimKind::ALL);
        round_trip(ClaimStatus::ALL);
        round_trip(SendState::ALL);
        assert_eq!(ClaimKind::Refund.as_str(), "refund");
        assert_eq!(ClaimStatus::Claimed.as_str(), "claimed");
        assert_eq!(SendState::Journaled.as_str(), "journaled");
        assert!("Claimed".parse::<ClaimStatus>().is_err());
        assert!("skipped".parse::<ClaimStatus>().is_err());
        assert!("bogus".parse::<SendState>().is_err());
        assert!("journaled".parse::<SendState>().is_ok() && "nope".parse::<SendState>().is_err());
        assert!(ClaimStatus::Spent.is_final() && !ClaimStatus::Failed.is_final());
        assert!(SendState::Created.is_unfinished() && !SendState::Delivered.is_unfinished());
        assert_eq!(format!("[{:<8}]", ClaimKind::Change), "[change  ]");
    }

    #[test]
    fn enums_serialise_as_their_text() {
        let j = serde_json::to_string(&(ClaimKind::Change, SendState::Stranded)).expect("json");
        assert_eq!(j, r#"["change","stranded"]"#);
    }

    #[test]
    fn sqlite_stores_the_same_text() {
        let c = rusqlite::Connection::open_in_memory().expect("db");
        let text: String = c
            .query_row("SELECT ?1", [SendState::Journaled], |r| r.get(0))
            .expect("row");
        assert_eq!(text, "journaled");
        let back: ClaimStatus = c
            .query_row("SELECT 'spent'", [], |r| r.get(0))
            .expect("row");
        assert_eq!(back, ClaimStatus::Spent);
        let bad: rusqlite::Result<ClaimStatus> = c.query_row("SELECT 'x'", [], |r| r.get(0));
        assert!(bad.is_err());
    }
}
