//! One consuming daemon per database: an OS lock (`flock`) on the database
//! file itself, so that every path that reaches it (a symlink, a hard link,
//! a bind mount, `..`) meets the same lock, and there is no lock file to
//! delete. The kernel releases it when the process dies, so a crash leaves
//! nothing stuck. SQLite locks with `fcntl`, which `flock` does not touch.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use anyhow::Context;

/// Held while the daemon runs. The file stays open until the daemon ends:
/// closing a descriptor of the database would drop SQLite's own locks.
pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    /// Takes the lock, creating the (empty) database file if needed, or
    /// says that another daemon holds it.
    pub fn acquire(store_path: &Path) -> anyhow::Result<DaemonLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(store_path)
            .with_context(|| format!("cannot open the store {}", store_path.display()))?;
        let is_file = file.metadata().map(|m| m.is_file()).unwrap_or(false);
        if !is_file {
            anyhow::bail!("the store {} is not a regular file", store_path.display());
        }
        match file.try_lock() {
            Ok(()) => Ok(DaemonLock { _file: file }),
            Err(TryLockError::WouldBlock) => anyhow::bail!(
                "another inboxd daemon is already consuming {} (it holds a lock on the database file)",
                store_path.display()
            ),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", store_path.display()))
            }
        }
    }

    /// Whether a daemon holds the lock now. Needs only read access, so that
    /// any user who may read the store can ask. Call it before opening the
    /// store in this process: closing the probe's descriptor would drop
    /// this process's SQLite locks on the file.
    pub fn is_held(store_path: &Path) -> bool {
        let Ok(file) = File::open(store_path) else {
            return false;
        };
        matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
    }
}
