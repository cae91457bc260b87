//! The command context ([`Ctx`]: settings, output streams, clock,
//! deadline) and the small input/output helpers every verb shares.

use std::cell::RefCell;
use std::io::{Read, Write};

use jobctl::config::{self, Config};
use jobctl::deadline::Deadline;
use jobctl::error::{Error, Result};
use jobctl::keys;
use jobctl::settings::Settings;
use nostr_sdk::prelude::*;

/// Where a command writes: stdout for data, stderr for people. Tests give
/// a command buffers instead of the process's streams.
pub(crate) struct Io {
    out: RefCell<Box<dyn Write>>,
    err: RefCell<Box<dyn Write>>,
    /// Whether stderr gets colour (a terminal, no `NO_COLOR`).
    pub(crate) color: bool,
}

impl Io {
    /// The process's own stdout and stderr.
    pub(crate) fn process() -> Io {
        Io {
            out: RefCell::new(Box::new(std::io::stdout())),
            err: RefCell::new(Box::new(std::io::stderr())),
            color: super::render::stderr_color(),
        }
    }

    /// Two in-memory buffers (for unit tests).
    #[cfg(test)]
    pub(crate) fn buffers() -> (Io, SharedBuf, SharedBuf) {
        let (o, e) = (SharedBuf::default(), SharedBuf::default());
        let io = Io {
            out: RefCell::new(Box::new(o.clone())),
            err: RefCell::new(Box::new(e.clone())),
            color: false,
        };
        (io, o, e)
    }
}

/// A cloneable in-memory writer (for unit tests).
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct SharedBuf(std::rc::Rc<RefCell<Vec<u8>>>);

#[cfg(test)]
impl SharedBuf {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

#[cfg(test)]
impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The command's clock: the system's, or a fixed time in tests.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    System,
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(u64),
}

impl Clock {
    pub(crate) fn now(self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Fixed(t) => Timestamp::from(t),
        }
    }
}

/// What every command gets: its resolved settings, where to write, a
/// clock, and its one deadline.
pub(crate) struct Ctx {
    pub(crate) settings: Settings,
    pub(crate) quiet: bool,
    pub(crate) io: Io,
    pub(crate) clock: Clock,
    /// When the command started: its deadline counts from here.
    started: std::time::Instant,
    /// The command's one deadline, once its `--timeout` is known.
    deadline: std::cell::Cell<Option<Deadline>>,
}

impl Ctx {
    /// The context of a command run by the process.
    pub(crate) fn new(settings: Settings, quiet: bool) -> Ctx {
        Ctx {
            settings,
            quiet,
            io: Io::process(),
            clock: Clock::System,
            started: std::time::Instant::now(),
            deadline: std::cell::Cell::new(None),
        }
    }

    /// A context writing to buffers with a fixed clock (for unit tests).
    #[cfg(test)]
    pub(crate) fn for_test(
        settings: Settings,
        quiet: bool,
        now: u64,
    ) -> (Ctx, SharedBuf, SharedBuf) {
        let (io, out, err) = Io::buffers();
        let mut ctx = Ctx::new(settings, quiet);
        ctx.io = io;
        ctx.clock = Clock::Fixed(now);
        (ctx, out, err)
    }

    /// Set the command's one deadline: `--timeout` if given, else
    /// `default`, counted from the start of the command. Every network
    /// step below gets what is left of it.
    pub(crate) fn start_deadline(
        &self,
        flag: Option<&str>,
        default: std::time::Duration,
    ) -> Result<Deadline> {
        let d = Deadline::starting(self.started, timeout_for(flag, default)?);
        self.deadline.set(Some(d));
        Ok(d)
    }

    /// The command's deadline (see [`Ctx::start_deadline`]); a command
    /// that never set one gets the default publish bound.
    pub(crate) fn deadline(&self) -> Deadline {
        self.deadline
            .get()
            .unwrap_or_else(|| Deadline::starting(self.started, config::DEFAULT_PUBLISH_TIMEOUT))
    }

    /// Now, by the command's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn config(&self) -> Result<Config> {
        self.settings.config().cloned()
    }

    /// The signing key, or `None` when there is none (reads work without
    /// one; a key only answers NIP-42 AUTH). A key that exists but is
    /// broken is still an error.
    pub(crate) fn optional_key(&self, _cfg: &Config) -> Result<Option<keys::SigningKey>> {
        self.settings.optional_key()
    }

    /// The signing key (required).
    pub(crate) fn key(&self, _cfg: &Config) -> Result<keys::SigningKey> {
        self.settings.signing_key()
    }

    /// Open the journal (creating it on first use).
    pub(crate) fn journal(&self) -> Result<jobctl::journal::Journal> {
        self.settings.journal()
    }

    /// Open the wallet (creating it on first use).
    pub(crate) async fn wallet(&self) -> Result<jobctl::wallet::LocalWallet> {
        self.settings.wallet().await
    }

    /// Open the journal only if it already exists (readers never create it).
    pub(crate) fn existing_journal(&self) -> Result<Option<jobctl::journal::Journal>> {
        self.settings.existing_journal()
    }

    /// A line for people on stderr, unless `--quiet`.
    pub(crate) fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(self.io.err.borrow_mut(), "{}", line.as_ref());
        }
    }

    /// `warning: message` in one line on stderr, even under `--quiet`.
    pub(crate) fn warn(&self, msg: &str) {
        self.flag_line("warning:", "1;33", msg);
    }

    /// `error: message` in one line on stderr, even under `--quiet`.
    pub(crate) fn error(&self, msg: &str) {
        self.flag_line("error:", "1;31", msg);
    }

    fn flag_line(&self, flag: &str, code: &str, msg: &str) {
        let flag = super::render::paint(flag, self.io.color, code);
        let msg = super::render::one_line(msg);
        let _ = writeln!(self.io.err.borrow_mut(), "{flag} {msg}");
    }

    /// Raw bytes on stdout (a log body, a completion script), as given.
    pub(crate) fn out(&self) -> std::cell::RefMut<'_, Box<dyn Write>> {
        self.io.out.borrow_mut()
    }

    /// Data on stdout: one line (or several), flushed. A closed pipe
    /// (`| head`) is not an error worth a message.
    pub(crate) fn print(&self, s: &str) -> Result<()> {
        let mut out = self.io.out.borrow_mut();
        match writeln!(out, "{s}").and_then(|_| out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Error::io("cannot write to stdout", e)),
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))
}

pub(crate) fn read_stdin(what: &str) -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Error::io(format!("cannot read {what} from stdin"), e))?;
    Ok(s.trim().to_string())
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Runtime(format!("cannot encode JSON: {e}")))
}

/// `--relay` flags if any, else the configured (file + env) relays.
pub(crate) fn relays_for(cfg: &Config, flags: &[String]) -> Result<Vec<RelayUrl>> {
    if flags.is_empty() {
        Ok(cfg.relays.clone())
    } else {
        config::parse_relays(flags.iter().map(String::as_str))
            .map_err(|e| Error::input(format!("--relay: {e}")))
    }
}

/// Fail when no relay is known at all.
pub(crate) fn require_relays(urls: &[RelayUrl]) -> Result<()> {
    if urls.is_empty() {
        return Err(Error::input(
            "no relays: pass --relay URL, set JOBCTL_RELAYS, or add `relays` to the config",
        ));
    }
    Ok(())
}

/// `--min-accept` if given, else the config's; at least 1.
pub(crate) fn min_accept_for(flag: Option<usize>, cfg: &Config) -> Result<usize> {
    let n = flag.unwrap_or(cfg.min_accept);
    if n == 0 {
        return Err(Error::input("--min-accept must be at least 1"));
    }
    Ok(n)
}

/// `--timeout` if given, else `default`.
pub(crate) fn timeout_for(
    flag: Option<&str>,
    default: std::time::Duration,
) -> Result<std::time::Duration> {
    match flag {
        Some(t) => config::parse_duration(t).map_err(|e| Error::input(format!("--timeout: {e}"))),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobctl::settings::GlobalFlags;

    fn settings() -> Settings {
        Settings::resolve(GlobalFlags {
            journal: Some("/nonexistent/journal.sqlite".into()),
            ..GlobalFlags::default()
        })
    }

    #[test]
    fn data_goes_to_stdout_people_to_stderr_and_quiet_silences_people() {
        let (ctx, out, err) = Ctx::for_test(settings(), false, 1_700_000_000);
        ctx.print("abc").unwrap();
        ctx.say("hello");
        assert_eq!(out.text(), "abc\n");
        assert_eq!(err.text(), "hello\n");
        assert_eq!(ctx.now().as_secs(), 1_700_000_000);
        let (quiet, out, err) = Ctx::for_test(settings(), true, 0);
        quiet.print("id").unwrap();
        quiet.say("noise");
        assert_eq!((out.text().as_str(), err.text().as_str()), ("id\n", ""));
        quiet.warn("still\nshown");
        quiet.error("too");
        assert_eq!(err.text(), "warning: still shown\nerror: too\n");
    }

    #[test]
    fn flags_beat_defaults_and_readers_never_create_the_journal() {
        let s = settings();
        assert_eq!(
            s.journal_path,
            std::path::PathBuf::from("/nonexistent/journal.sqlite")
        );
        assert!(s.existing_journal().unwrap().is_none());
    }
}
