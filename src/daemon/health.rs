//! What a running daemon tells `status` about trouble with its store (a
//! full disk, an I/O error) while it waits to try again.
//!
//! Not in the database, which is what fails: in a small file beside it,
//! `<db>.health`, whose blocks are written once at start and then only
//! overwritten in place, so that saying "the disk is full" needs no new
//! disk space. A clean stop removes it; `status` reads it only while a
//! daemon holds the store.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's fixed size: the report, padded with spaces.
const SIZE: usize = 4096;
/// The longest error kept: even with every character escaped (`\u00XX`),
/// the report fits `SIZE`.
const MAX_ERROR_CHARS: usize = 500;

/// The store is failing: since when, why, and when the next try is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreTrouble {
    pub error: String,
    pub since: String,
    pub next_attempt: String,
}

/// The daemon's side: writes reports while it runs.
pub struct Health {
    path: PathBuf,
    file: Option<File>,
    failing: bool,
}

fn health_path(store_path: &Path) -> PathBuf {
    crate::store::beside(store_path, ".health")
}

impl Health {
    /// Creates the file with its blocks. Best effort: without it the
    /// daemon works as before and says its trouble in the log only.
    pub fn create(store_path: &Path) -> Health {
        let path = health_path(store_path);
        let file = crate::regular_file::create(&path, 0o644, false).and_then(|file| {
            file.write_all_at(&[b' '; SIZE], 0)?;
            Ok(file)
        });
        let file = match file {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(
                    "cannot write {}: {e}; store trouble will be in the log only",
                    path.display()
                );
                None
            }
        };
        Health {
            path,
            file,
            failing: false,
        }
    }

    /// Reports the store failing.
    pub fn store_failing(&mut self, trouble: &StoreTrouble) {
        self.failing = true;
        // Cut long errors so that the report, JSON-escaped, fits the file.
        let mut short = trouble.clone();
        if let Some((cut, _)) = short.error.char_indices().nth(MAX_ERROR_CHARS) {
            short.error.truncate(cut);
        }
        self.write(&serde_json::to_string(&short).unwrap_or_default());
    }

    /// Reports the store working again, if it was failing.
    pub fn store_ok(&mut self) {
        if std::mem::take(&mut self.failing) {
            self.write("");
        }
    }

    fn write(&self, text: &str) {
        let Some(file) = &self.file else { return };
        let mut block = [b' '; SIZE];
        let len = text.len().min(SIZE);
        block[..len].copy_from_slice(&text.as_bytes()[..len]);
        if let Err(e) = file.write_all_at(&block, 0) {
            tracing::debug!("cannot write {}: {e}", self.path.display());
        }
    }

    /// A clean stop: no report left behind.
    pub fn remove(&self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// The running daemon's report of store trouble, if any.
    pub fn read(store_path: &Path) -> Option<StoreTrouble> {
        let text = std::fs::read_to_string(health_path(store_path)).ok()?;
        serde_json::from_str(text.trim()).ok()
    }
}

/// Whether an error is the store being unavailable for now (a full disk,
/// an I/O error), worth waiting out, rather than a problem that waiting
/// does not mend (a damaged database, a bad config, another daemon).
pub fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(e) = cause.downcast_ref::<crate::store::StoreError>() {
            return e.is_transient();
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                e.raw_os_error(),
                Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG | libc::EIO)
            );
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_read_back_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("inboxd.db");
        let mut health = Health::create(&db);
        assert_eq!(Health::read(&db), None);
        let trouble = StoreTrouble {
            error: "disk full".into(),
            since: "2026-01-01T00:00:00Z".into(),
            next_attempt: "2026-01-01T00:00:02Z".into(),
        };
        health.store_failing(&trouble);
        assert_eq!(Health::read(&db), Some(trouble));
        // The file keeps its size: no new blocks needed to report.
        assert_eq!(
            std::fs::metadata(health_path(&db)).unwrap().len(),
            SIZE as u64
        );
        health.store_failing(&StoreTrouble {
            error: "x".repeat(10 * SIZE),
            since: String::new(),
            next_attempt: String::new(),
        });
        assert!(Health::read(&db).is_some());
        health.store_ok();
        assert_eq!(Health::read(&db), None);
        health.remove();
        assert!(!health_path(&db).exists());
    }

    #[test]
    fn transient_store_errors_and_full_disks_are_transient_others_are_not() {
        let full = crate::store::StoreError::backend(crate::store::Trouble::Transient, "disk full");
        assert!(is_transient(
            &anyhow::Error::new(full).context("cannot commit")
        ));
        let enospc = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_transient(&anyhow::Error::new(enospc)));
        let corrupt = crate::store::StoreError::backend(crate::store::Trouble::Other, "damaged");
        assert!(!is_transient(&anyhow::Error::new(corrupt)));
        assert!(!is_transient(&anyhow::anyhow!("another inboxd daemon")));
    }
}
