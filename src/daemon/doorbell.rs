//! The doorbell: a file beside the database (`<db>.doorbell`) that a
//! producer in another process touches after it has committed events, and
//! that the idle daemon watches (inotify), so that it picks them up at
//! once. SQLite has no NOTIFY; the store knows nothing of this. A daemon
//! that misses a ring finds the events at its next look (every 500 ms).

use std::io::Write;
use std::path::{Path, PathBuf};

/// `<db>.doorbell`.
pub fn path(store_path: &Path) -> PathBuf {
    crate::store::beside(store_path, ".doorbell")
}

/// Tells a watching daemon that events were committed. Best effort; never
/// through a link put in the doorbell's place (opening it to write would
/// truncate the link's target).
pub fn ring(store_path: &Path) {
    let _ = crate::regular_file::create(&path(store_path), 0o660, true)
        .and_then(|mut file| file.write_all(b""));
}
