//! File watching: rule and config changes become reload requests; the
//! store's doorbell, rung by `enqueue` after each commit, wakes the idle
//! daemon.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::daemon::Control;
use crate::store::doorbell_path;

/// Saves come in bursts (temp file, rename, chmod...): one reload per burst.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Keeps the watchers alive; dropping it stops them.
pub struct Watches {
    rules: Debouncer<RecommendedWatcher, RecommendedCache>,
    _store: RecommendedWatcher,
    config_dir: PathBuf,
    rules_dir: PathBuf,
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
    let config_dir = real(&directory_of(config_file));
    let rules_dir = real(rules_dir);
    let ours = [config_dir.clone(), rules_dir.clone()];
    let c = Arc::clone(control);
    let mut rules = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        match result {
            Ok(events) => {
                let relevant = events.iter().any(|e| {
                    !e.kind.is_access()
                        && e.paths
                            .iter()
                            .any(|p| ours.iter().any(|d| p.starts_with(d)))
                });
                if !relevant {
                    return;
                }
            }
            // A watcher error or an overflow may hide a change: reload all.
            Err(errors) => tracing::warn!("file watcher error, reloading: {errors:?}"),
        }
        c.request_reload();
    })?;
    rules.watch(&config_dir, RecursiveMode::NonRecursive)?;
    rules.watch(&rules_dir, RecursiveMode::Recursive)?;
    if let Some(parent) = rules_dir.parent() {
        rules.watch(parent, RecursiveMode::NonRecursive)?;
    }

    let c = Arc::clone(control);
    let doorbell = doorbell_path(store_path);
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
        config_dir,
        rules_dir,
    })
}

impl Watches {
    /// Watches the config and rules directories again, in case they were
    /// replaced (a deploy that swaps the rules directory for a new one):
    /// a watch follows a directory, not its name. Called before each reload.
    pub fn refresh(&mut self) {
        for (dir, mode) in [
            (&self.config_dir, RecursiveMode::NonRecursive),
            (&self.rules_dir, RecursiveMode::Recursive),
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
