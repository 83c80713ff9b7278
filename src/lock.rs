//! One consuming daemon per database: an OS file lock beside it, which the
//! kernel releases when the process dies, so a crash leaves nothing stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Held while the daemon runs.
pub struct DaemonLock {
    _file: File,
}

fn lock_path(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

fn open(store_path: &Path) -> anyhow::Result<(PathBuf, File)> {
    let path = lock_path(store_path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    Ok((path, file))
}

impl DaemonLock {
    /// Takes the lock, or says which daemon holds it.
    pub fn acquire(store_path: &Path) -> anyhow::Result<DaemonLock> {
        let (path, file) = open(store_path)?;
        match file.try_lock() {
            Ok(()) => Ok(DaemonLock { _file: file }),
            Err(TryLockError::WouldBlock) => anyhow::bail!(
                "another inboxd daemon is already consuming {} (it holds {})",
                store_path.display(),
                path.display()
            ),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// Whether a daemon holds the lock now.
    pub fn is_held(store_path: &Path) -> bool {
        if !lock_path(store_path).exists() {
            return false;
        }
        match open(store_path) {
            Ok((_, file)) => matches!(file.try_lock(), Err(TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }
}
