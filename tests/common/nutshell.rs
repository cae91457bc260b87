//! A real Nutshell mint (the reference Python Cashu mint, `pip install
//! cashu`, its `mint` command) for tests that must also pass against an
//! independent implementation, not only cdk's.
//!
//! `Nutshell::start(fee_ppk)` runs `mint` as a child process on a free
//! loopback port in its own temp dir and waits (bounded) until `/v1/info`
//! answers; dropping it kills the process group. When `mint` is not on PATH
//! it returns `None` after one clear `eprintln` so the caller can skip.
//!
//! The environment it sets (Nutshell reads its settings from env vars):
//! - `MINT_BACKEND_BOLT11_SAT=FakeWallet`: fake Lightning that settles every
//!   invoice by itself (after its default 3 s), so `jobctl wallet mint`
//!   funds a wallet. Do not set `FAKEWALLET_DELAY_INCOMING_PAYMENT=0`: the
//!   fake payment then races the quote's insertion ("Quote not found"), the
//!   quote stays unpaid and a NUT-17 wait for it never ends.
//! - `MINT_LISTEN_HOST=127.0.0.1`, `MINT_LISTEN_PORT=<free port>`.
//! - `MINT_PRIVATE_KEY=<random hex>`: fresh keysets per mint.
//! - `MINT_DATABASE=<tmp>/db`, `CASHU_DIR=<tmp>/cashu`: nothing outside the
//!   temp dir; the child runs in the temp dir, which holds an empty `.env`,
//!   so no `.env` of the user (`./.env`, `~/.cashu/.env`) is read.
//! - `MINT_INPUT_FEE_PPK=<fee_ppk>` (Nutshell's own default is 100).
//! - `MINT_RATE_LIMIT=FALSE`: tests make more requests than its default
//!   20 transactions a minute.
//!
//! `JOBCTL_TEST_NUTSHELL` may name the `mint` executable explicitly.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the mint may take to answer `/v1/info` after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Nutshell mint, killed on drop.
pub struct Nutshell {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its input fee, parts per thousand per proof.
    pub fee_ppk: u64,
    child: Child,
    dir: tempfile::TempDir,
}

/// The `mint` executable: `$JOBCTL_TEST_NUTSHELL`, else `mint` on PATH.
pub fn executable() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("JOBCTL_TEST_NUTSHELL").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("mint"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One plain HTTP/1.1 GET on loopback; the status code, if any answer.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl Nutshell {
    /// Start a Nutshell mint with `fee_ppk` input fees, or `None` (after
    /// saying so on stderr) when Nutshell is not installed.
    pub fn start(fee_ppk: u64) -> Option<Nutshell> {
        Self::start_with(fee_ppk, &[])
    }

    /// The same with extra (or overriding) environment variables, e.g.
    /// `("MINT_RATE_LIMIT", "TRUE")` for Nutshell's own defaults.
    pub fn start_with(fee_ppk: u64, env: &[(&str, &str)]) -> Option<Nutshell> {
        let Some(exe) = executable() else {
            eprintln!(
                "SKIPPED: Nutshell's `mint` is not on PATH (pip install cashu); \
                 the Nutshell tests did not run"
            );
            return None;
        };
        // A port picked here can be taken before the mint binds it: retry.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&exe, fee_ppk, env) {
                Ok(n) => return Some(n),
                Err(e) => last = e,
            }
        }
        panic!("Nutshell mint did not start:\n{last}");
    }

    fn try_start(exe: &Path, fee_ppk: u64, env: &[(&str, &str)]) -> Result<Nutshell, String> {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".env"), "").expect(".env");
        let log = std::fs::File::create(dir.path().join("mint.log")).expect("log");
        let port = free_port();
        let child = Command::new(exe)
            .current_dir(dir.path())
            .env("MINT_BACKEND_BOLT11_SAT", "FakeWallet")
            .env("MINT_LISTEN_HOST", "127.0.0.1")
            .env("MINT_LISTEN_PORT", port.to_string())
            .env("MINT_PRIVATE_KEY", random_hex())
            .env("MINT_DATABASE", dir.path().join("db"))
            .env("CASHU_DIR", dir.path().join("cashu"))
            .env("MINT_INPUT_FEE_PPK", fee_ppk.to_string())
            .env("MINT_RATE_LIMIT", "FALSE")
            .env("DEBUG", "FALSE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        let mut n = Nutshell {
            url: format!("http://127.0.0.1:{port}"),
            fee_ppk,
            child,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if http_status(port, "/v1/info") == Some(200) {
                return Ok(n);
            }
            if let Ok(Some(st)) = n.child.try_wait() {
                return Err(format!("`mint` exited with {st}; its log:\n{}", n.log()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on /v1/info within {START_TIMEOUT:?}; its log:\n{}",
                    n.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Freeze the mint (SIGSTOP): connections are still accepted by the
    /// kernel, but nothing answers, as with a hung mint.
    pub fn pause(&self) {
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGSTOP);
        }
    }

    /// Let a paused mint go on (SIGCONT).
    pub fn resume(&self) {
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGCONT);
        }
    }

    /// The mint's own log so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mint.log")).unwrap_or_default()
    }
}

impl Drop for Nutshell {
    fn drop(&mut self) {
        // The whole group: a shim may have started Python as a child.
        let pid = self.child.id() as i32;
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
