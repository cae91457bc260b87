//! The library's error type and the process exit codes it maps to.
//!
//! Every failure a user can cause (bad flags, bad token, bad key file, bad
//! config) is [`Error::Input`] or one of its typed cousins and exits 2;
//! failures of the outside world (relays, disk, network) exit 1. The
//! message of each variant is one line, ready to print after `error: `.

use std::path::PathBuf;

/// Documented, stable exit codes.
pub mod exit {
    /// Success: the job reached at least `--min-accept` relays.
    pub const OK: i32 = 0;
    /// Runtime failure, or fewer relays than `--min-accept` accepted.
    pub const FAILURE: i32 = 1;
    /// Bad input or usage; nothing was signed or published.
    pub const USAGE: i32 = 2;
}

/// Errors raised by the library. Each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad user input: a malformed flag value, token, pubkey, URL...
    #[error("{0}")]
    Input(String),

    /// A config file that cannot be read or holds an unknown key or bad value.
    #[error("config {}: {msg}", path.display())]
    Config { path: PathBuf, msg: String },

    /// A key file problem (missing, unreadable, bad permissions, bad content).
    #[error("key file {}: {msg}", path.display())]
    KeyFile { path: PathBuf, msg: String },

    /// Relays or the network failed in a way that is not the user's input.
    #[error("{0}")]
    Relay(String),

    /// Filesystem or other IO failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The journal cannot be opened, is corrupt, or a query failed.
    #[error("journal {0}")]
    Journal(String),

    /// The wallet or a mint failed (unreachable, already spent, ...).
    #[error("{0}")]
    Wallet(String),

    /// Anything else that went wrong at run time.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// Shorthand for a bad-input error.
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    /// Wrap an IO error with what was being attempted.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Config { .. } | Error::KeyFile { .. } => exit::USAGE,
            Error::Relay(_)
            | Error::Io { .. }
            | Error::Runtime(_)
            | Error::Journal(_)
            | Error::Wallet(_) => exit::FAILURE,
        }
    }
}

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
