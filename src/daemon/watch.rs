//! File watching: rule and config changes become reload requests; the
//! doorbell, rung by `enqueue` after each commit, wakes the idle daemon.
//!
//! Only the files that matter count: the config file itself, and `.rhai`
//! and `.toml` files (or directories) under the rules directory. A store,
//! a log or an editor's swap file kept beside them changes nothing. The
//! rules directory is watched by its real path, and its configured name in
//! its parent too: a deploy that swaps a symlink (`ln -sfn v2 rules.tmp &&
//! mv -T rules.tmp rules`) or a directory for a new one is seen, and the
//! new target is watched from then on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::daemon::control::Control;
use crate::daemon::doorbell;

/// Saves come in bursts (temp file, rename, chmod...): one reload per burst.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The paths whose changes call for a reload.
#[derive(Debug, Clone)]
struct Relevant {
    /// The config file, as reached through its directory's real path.
    config_file: PathBuf,
    /// The rules directory's real path now (it changes when a deploy swaps
    /// the directory a symlink points to).
    rules_dir: PathBuf,
    /// The rules directory as configured, in its parent's real path.
    rules_name: PathBuf,
}

impl Relevant {
    fn new(config_file: &Path, rules_dir: &Path) -> Relevant {
        let config_file = match config_file.file_name() {
            Some(name) => real(&directory_of(config_file)).join(name),
            None => config_file.to_path_buf(),
        };
        let rules_name = match rules_dir.file_name() {
            Some(name) => real(&directory_of(rules_dir)).join(name),
            None => real(rules_dir),
        };
        Relevant {
            config_file,
            rules_dir: real(rules_dir),
            rules_name,
        }
    }

    fn matters(&self, path: &Path) -> bool {
        if path == self.config_file || path == self.rules_name || path == self.rules_dir {
            return true;
        }
        let under_rules = path.starts_with(&self.rules_dir) || path.starts_with(&self.rules_name);
        under_rules && is_rule_file_or_directory(path)
    }
}

/// A rule file by its name, or something that may be (or may have been)
/// a directory holding some.
fn is_rule_file_or_directory(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("rhai" | "toml") => true,
        Some(_) => path.is_dir(),
        None => !path.is_file(),
    }
}

/// Keeps the watchers alive; dropping it stops them.
pub struct Watches {
    rules: Debouncer<RecommendedWatcher, RecommendedCache>,
    _store: RecommendedWatcher,
    relevant: Arc<Mutex<Relevant>>,
    config_dir: PathBuf,
    /// The rules directory as configured (a symlink, maybe).
    rules_configured: PathBuf,
    /// The real directory watched now.
    rules_watched: PathBuf,
}

/// Watches the config file's directory and the rules directory (the
/// directories, since editors save by writing a temp file and renaming it),
/// the rules directory's parent (to see the rules directory itself swapped
/// for a new one) and the store's directory (for the doorbell).
pub fn start(
    config_file: &Path,
    rules_dir: &Path,
    store_path: &Path,
    control: &Arc<Control>,
) -> notify::Result<Watches> {
    let relevant = Arc::new(Mutex::new(Relevant::new(config_file, rules_dir)));
    let config_dir = real(&directory_of(config_file));
    let rules_watched = real(rules_dir);
    let (c, r) = (Arc::clone(control), Arc::clone(&relevant));
    let mut rules = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        match result {
            Ok(events) => {
                let Ok(relevant) = r.lock() else { return };
                let matters = events
                    .iter()
                    .any(|e| !e.kind.is_access() && e.paths.iter().any(|p| relevant.matters(p)));
                if !matters {
                    return;
                }
            }
            // A watcher error or an overflow may hide a change: reload all.
            Err(errors) => tracing::warn!("file watcher error, reloading: {errors:?}"),
        }
        c.request_reload();
    })?;
    rules.watch(&config_dir, RecursiveMode::NonRecursive)?;
    rules.watch(&rules_watched, RecursiveMode::Recursive)?;
    rules.watch(real(&directory_of(rules_dir)), RecursiveMode::NonRecursive)?;

    let c = Arc::clone(control);
    let doorbell = doorbell::path(store_path);
    let doorbell_name = doorbell.file_name().map(|n| n.to_os_string());
    let mut store = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        let rung = match &result {
            Ok(event) => event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == doorbell_name),
            Err(_) => true,
        };
        if rung {
            c.wake();
        }
    })?;
    // The directory, not the file: it may not exist yet.
    store.watch(&directory_of(&doorbell), RecursiveMode::NonRecursive)?;
    Ok(Watches {
        rules,
        _store: store,
        relevant,
        config_dir,
        rules_configured: rules_dir.to_path_buf(),
        rules_watched,
    })
}

impl Watches {
    /// Watches the config and rules directories again, in case they were
    /// replaced (a deploy that swaps the rules directory, or the symlink to
    /// it, for a new one): a watch follows a directory, not its name.
    /// Called before each reload.
    pub fn refresh(&mut self) {
        let now = real(&self.rules_configured);
        if now != self.rules_watched {
            let _ = self.rules.unwatch(&self.rules_watched);
            tracing::info!(
                "the rules directory is now {} (was {})",
                now.display(),
                self.rules_watched.display()
            );
            self.rules_watched = now;
        }
        if let Ok(mut relevant) = self.relevant.lock() {
            relevant.rules_dir = self.rules_watched.clone();
        }
        for (dir, mode) in [
            (&self.config_dir, RecursiveMode::NonRecursive),
            (&self.rules_watched, RecursiveMode::Recursive),
        ] {
            let _ = self.rules.unwatch(dir);
            if let Err(e) = self.rules.watch(dir, mode) {
                tracing::warn!("cannot watch {}: {e}", dir.display());
            }
        }
    }
}

/// The path with links and `..` resolved, when it exists.
fn real(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn directory_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_config_file_and_rule_files_matter() {
        let dir = tempfile::tempdir().unwrap();
        let root = real(dir.path());
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::create_dir_all(root.join("releases/v1/sub")).unwrap();
        std::os::unix::fs::symlink(root.join("releases/v1"), root.join("rules")).unwrap();
        let relevant = Relevant::new(
            &root.join("config/inboxd.toml"),
            &root.join("config/../rules"),
        );
        for path in [
            "config/inboxd.toml",
            "rules",
            "releases/v1/a.rhai",
            "releases/v1/pipeline.toml",
            "releases/v1/sub",
            "releases/v1/gone",
        ] {
            assert!(relevant.matters(&root.join(path)), "{path}");
        }
        std::fs::write(root.join("releases/v1/notes.txt"), "").unwrap();
        for path in [
            "config/inboxd.db",
            "config/inboxd.db-wal",
            "config/.inboxd.toml.swp",
            "releases/v1/inboxd.db-wal",
            "releases/v1/notes.txt",
            "other",
        ] {
            assert!(!relevant.matters(&root.join(path)), "{path}");
        }
    }
}
