//! `inboxd init`: a working installation — config, the default policies
//! and their tests — written into a directory.
//!
//! The shipped files live in `defaults/`, embedded here. The repository's
//! `config/` and `rules/` are a working installation made of the same
//! files (CI checks they are equal on a fresh clone), for the quick start;
//! an admin may change them, and the tests, which use these embedded
//! files, do not notice.

use std::path::Path;

use anyhow::Context;

/// The shipped files, as in this repository.
pub const FILES: &[(&str, &str)] = &[
    (
        "config/inboxd.toml",
        include_str!("../../defaults/config/inboxd.toml"),
    ),
    (
        "rules/pipeline.toml",
        include_str!("../../defaults/rules/pipeline.toml"),
    ),
    (
        "rules/auto_close.rhai",
        include_str!("../../defaults/rules/auto_close.rhai"),
    ),
    (
        "rules/auto_ticket.rhai",
        include_str!("../../defaults/rules/auto_ticket.rhai"),
    ),
    (
        "rules/blocked_sender.rhai",
        include_str!("../../defaults/rules/blocked_sender.rhai"),
    ),
    (
        "rules/cascade_close.rhai",
        include_str!("../../defaults/rules/cascade_close.rhai"),
    ),
    (
        "rules/cascade_reopen.rhai",
        include_str!("../../defaults/rules/cascade_reopen.rhai"),
    ),
    (
        "rules/delete_cascade.rhai",
        include_str!("../../defaults/rules/delete_cascade.rhai"),
    ),
    (
        "rules/owner_sync.rhai",
        include_str!("../../defaults/rules/owner_sync.rhai"),
    ),
    (
        "rules/spam_close.rhai",
        include_str!("../../defaults/rules/spam_close.rhai"),
    ),
    (
        "rules/ticket_gate.rhai",
        include_str!("../../defaults/rules/ticket_gate.rhai"),
    ),
    (
        "rules/trash_cascade.rhai",
        include_str!("../../defaults/rules/trash_cascade.rhai"),
    ),
    (
        "rules/tests/auto_close.toml",
        include_str!("../../defaults/rules/tests/auto_close.toml"),
    ),
    (
        "rules/tests/policies.toml",
        include_str!("../../defaults/rules/tests/policies.toml"),
    ),
];

/// The shipped RuleSet, from the shipped files written under `dir`.
pub fn shipped_rules(dir: &Path) -> anyhow::Result<crate::scripting::ruleset::RuleSet> {
    init(dir)?;
    let config = crate::domain::config::Config::load(&dir.join("config/inboxd.toml"))?;
    crate::scripting::ruleset::RuleSet::load(config, None)
        .map_err(|problems| crate::domain::diagnostic::Diagnostics(problems).into())
}

/// Writes the shipped files under `dir`; refuses to overwrite any file.
pub fn init(dir: &Path) -> anyhow::Result<()> {
    for (path, _) in FILES {
        let target = dir.join(path);
        if target.exists() {
            anyhow::bail!(
                "{} already exists; init writes into a new directory and overwrites nothing",
                target.display()
            );
        }
    }
    for (path, text) in FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `defaults/` must be added to FILES too.
    #[test]
    fn every_shipped_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("defaults");
        let root = root.as_path();
        let mut on_disk = Vec::new();
        for dir in ["config", "rules", "rules/tests"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    on_disk.push(
                        path.strip_prefix(root)
                            .unwrap()
                            .to_string_lossy()
                            .to_string(),
                    );
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
