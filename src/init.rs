//! `inboxd init`: a working installation — config, the default policies
//! and their tests — written into a directory.

use std::path::Path;

use anyhow::Context;

/// The shipped files, as in this repository.
pub const FILES: &[(&str, &str)] = &[
    ("config/inboxd.toml", include_str!("../config/inboxd.toml")),
    (
        "rules/pipeline.toml",
        include_str!("../rules/pipeline.toml"),
    ),
    (
        "rules/auto_ticket.rhai",
        include_str!("../rules/auto_ticket.rhai"),
    ),
    (
        "rules/blocked_sender.rhai",
        include_str!("../rules/blocked_sender.rhai"),
    ),
    (
        "rules/cascade_close.rhai",
        include_str!("../rules/cascade_close.rhai"),
    ),
    (
        "rules/cascade_reopen.rhai",
        include_str!("../rules/cascade_reopen.rhai"),
    ),
    (
        "rules/delete_cascade.rhai",
        include_str!("../rules/delete_cascade.rhai"),
    ),
    (
        "rules/owner_sync.rhai",
        include_str!("../rules/owner_sync.rhai"),
    ),
    (
        "rules/spam_close.rhai",
        include_str!("../rules/spam_close.rhai"),
    ),
    (
        "rules/ticket_gate.rhai",
        include_str!("../rules/ticket_gate.rhai"),
    ),
    (
        "rules/trash_cascade.rhai",
        include_str!("../rules/trash_cascade.rhai"),
    ),
    (
        "rules/tests/policies.toml",
        include_str!("../rules/tests/policies.toml"),
    ),
];

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

    /// A rule file added to the repository must be added to FILES too.
    #[test]
    fn every_shipped_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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
