//! Private files: creating files (0600) and directories (0700) only the
//! user can read, refusing ones others can, and the cross-process lock
//! file ([`FileLock`]) that guards the wallet and the journal.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The file's permission bits when group or others may access it (unix);
/// `None` when only the owner can, or off unix.
pub fn too_open(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Create `path` empty with mode 0600; an existing file is left alone
/// (also one another process created a moment ago).
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Refuse a file (or directory) holding secrets or money that group or
/// others can access: exit 2 with the `chmod` that fixes it. `what` names
/// it ("journal", "wallet seed", "wallet directory").
pub fn refuse_open(what: &str, path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if let Some(mode) = too_open(&meta) {
        let fix = if meta.is_dir() { "700" } else { "600" };
        return Err(Error::input(format!(
            "{what} {} has permissions {mode:04o} (group or others can access it); run `chmod {fix} {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// An exclusive advisory lock on a lock file, released when the last
/// holder in this process drops it, and by the kernel when the process
/// dies (even by `kill -9`). Re-entrant within one process: taking it
/// again while held hands out the same lock, so an outer guard (e.g.
/// `rerun` around pay -> sign -> journal) and inner wallet calls nest.
#[derive(Clone)]
pub struct FileLock {
    _inner: std::sync::Arc<std::fs::File>,
    path: PathBuf,
}

impl fmt::Debug for FileLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileLock({})", self.path.display())
    }
}

type LockRegistry = std::sync::Mutex<Vec<(PathBuf, std::sync::Weak<std::fs::File>)>>;
static HELD_LOCKS: std::sync::LazyLock<LockRegistry> =
    std::sync::LazyLock::new(|| std::sync::Mutex::new(Vec::new()));

impl FileLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the lock without waiting: `Ok(None)` when another process holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<FileLock>> {
        let lerr = |e: std::io::Error| Error::io(format!("cannot lock {}", path.display()), e);
        let mut held = HELD_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|(_, w)| w.strong_count() > 0);
        if let Some(file) = held
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(Some(FileLock {
                _inner: file,
                path: path.to_path_buf(),
            }));
        }
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        create_private_file(path).map_err(lerr)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(lerr)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(lerr(e)),
        }
        let file = std::sync::Arc::new(file);
        held.push((path.to_path_buf(), std::sync::Arc::downgrade(&file)));
        Ok(Some(FileLock {
            _inner: file,
            path: path.to_path_buf(),
        }))
    }

    /// Take the lock, waiting up to `wait` for another process to let go.
    pub fn acquire(path: &Path, wait: std::time::Duration) -> Result<FileLock> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(l) = Self::try_acquire(path)? {
                return Ok(l);
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Runtime(format!(
                    "{} is held by another jobctl process for more than {}s; try again",
                    path.display(),
                    wait.as_secs()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
    }

    /// The same, for async callers (sleeps on the runtime's timer).
    pub async fn acquire_async(path: &Path, wait: std::time::Duration) -> Result<FileLock> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(l) = Self::try_acquire(path)? {
                return Ok(l);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Runtime(format!(
                    "{} is held by another jobctl process for more than {}s; try again",
                    path.display(),
                    wait.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        }
    }
}

/// Create a directory (and parents) readable only by the user.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lock_is_reentrant_in_process_and_exclusive_across_processes() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("lock");
        let a = FileLock::try_acquire(&path).expect("lock").expect("free");
        // The same process gets it again (nested guards)...
        let b = FileLock::try_acquire(&path)
            .expect("lock")
            .expect("re-entrant");
        // ...while another open file description (as another process
        // would have) cannot take it.
        let other = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(a);
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(b);
        other.try_lock().expect("free once every holder let go");
    }
}
