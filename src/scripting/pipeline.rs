//! Pipeline files (`rules/*.toml`): which script runs for which event types,
//! in which order, under which condition, and whether enabled.
//!
//! ```toml
//! [[rule]]
//! name = "cascade-close"
//! policy = "P6"
//! on = ["ticket.status_changed"]
//! script = "cascade_close.rhai"
//! when = 'stage_is_closed(event.status)'
//! enabled = true
//! ```

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::domain::diagnostic::{line_column, Diagnostic};
use crate::domain::event::{EVENT_TYPES, TIMER_FIRED};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    on: Spanned<Vec<String>>,
    script: Spanned<String>,
    #[serde(default)]
    when: Option<Spanned<String>>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

/// One rule as declared, with the places of its parts for error messages.
#[derive(Debug, Clone)]
pub struct RuleDecl {
    pub name: String,
    pub policy: Option<String>,
    pub description: Option<String>,
    pub on: Vec<String>,
    /// The script, relative to the rules directory.
    pub script: PathBuf,
    pub when: Option<String>,
    pub enabled: bool,
    /// The pipeline file, and the line of each part in it.
    pub file: PathBuf,
    pub name_line: usize,
    pub script_line: usize,
    pub when_line: usize,
}

/// Reads one pipeline file. Problems with single rules are collected, so
/// that `validate` shows them all.
pub fn parse(file: &Path, text: &str) -> (Vec<RuleDecl>, Vec<Diagnostic>) {
    let raw: PipelineFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => return (Vec::new(), vec![Diagnostic::from_toml(file, text, &e)]),
    };
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    let at = |span: std::ops::Range<usize>| line_column(text, span.start);
    for raw in raw.rule {
        let (name_line, name_col) = at(raw.name.span());
        let (on_line, on_col) = at(raw.on.span());
        let (script_line, script_col) = at(raw.script.span());
        let when_line = raw.when.as_ref().map_or(0, |w| at(w.span()).0);
        let name = raw.name.into_inner();
        if name.trim().is_empty() {
            problems.push(Diagnostic::at(
                file,
                name_line,
                name_col,
                "a rule's name must not be empty",
            ));
        }
        let on = raw.on.into_inner();
        if on.is_empty() {
            problems.push(Diagnostic::at(
                file,
                on_line,
                on_col,
                format!("rule {name:?}: `on` lists no event type"),
            ));
        }
        for t in &on {
            if !EVENT_TYPES.contains(&t.as_str()) && t != TIMER_FIRED {
                problems.push(Diagnostic::at(
                    file,
                    on_line,
                    on_col,
                    format!(
                        "rule {name:?}: unknown event type {t:?}; known types: {}, {TIMER_FIRED}",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        }
        let script = raw.script.into_inner();
        if let Err(why) = check_script_path(&script) {
            problems.push(Diagnostic::at(
                file,
                script_line,
                script_col,
                format!("rule {name:?}: script {script:?} {why}"),
            ));
        }
        rules.push(RuleDecl {
            name,
            policy: raw.policy,
            description: raw.description,
            on,
            script: PathBuf::from(script),
            when: raw.when.map(Spanned::into_inner),
            enabled: raw.enabled,
            file: file.to_path_buf(),
            name_line,
            script_line,
            when_line,
        });
    }
    (rules, problems)
}

/// A script is named by a plain relative path inside the rules directory.
fn check_script_path(script: &str) -> Result<(), &'static str> {
    let path = Path::new(script);
    if !script.ends_with(".rhai") {
        return Err("must be a .rhai file");
    }
    for component in path.components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return Err("must not leave the rules directory (`..`)"),
            _ => return Err("must be a path relative to the rules directory"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> (Vec<RuleDecl>, Vec<Diagnostic>) {
        parse(Path::new("rules/p.toml"), text)
    }

    #[test]
    fn reads_rules_in_order_with_defaults() {
        let (rules, problems) = parse_text(
            "[[rule]]\nname = \"a\"\non = [\"ticket.deleted\"]\nscript = \"a.rhai\"\n\n\
             [[rule]]\nname = \"b\"\non = [\"ticket.created\"]\nscript = \"b.rhai\"\nenabled = false\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].name, "a");
        assert!(rules[0].enabled);
        assert!(!rules[1].enabled);
        assert_eq!(rules[1].script_line, 9);
    }

    #[test]
    fn names_unknown_event_types_and_escaping_scripts() {
        let (_, problems) = parse_text(
            "[[rule]]\nname = \"a\"\non = [\"ticket.exploded\"]\nscript = \"../a.rhai\"\n",
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].line, Some(3));
        assert!(problems[0].message.contains("ticket.exploded"));
        assert_eq!(problems[1].line, Some(4));
        assert!(problems[1].message.contains("rules directory"));
    }

    #[test]
    fn absolute_script_paths_are_refused() {
        let (_, problems) = parse_text(
            "[[rule]]\nname = \"a\"\non = [\"ticket.deleted\"]\nscript = \"/etc/a.rhai\"\n",
        );
        assert!(problems[0].message.contains("relative"), "{problems:?}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let (_, problems) = parse_text("[[rule]]\nname = \"a\"\nwhen_ = \"x\"\n");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("when_"), "{problems:?}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_pipeline_text_never_panics(text in "\\PC*") {
            let _ = parse_text(&text);
        }

        #[test]
        fn rule_shaped_noise_never_panics(
            name in "\\PC{0,8}",
            on in "\\PC{0,20}",
            script in "\\PC{0,20}",
        ) {
            let text = format!(
                "[[rule]]\nname = {name:?}\non = [{on:?}]\nscript = {script:?}\n"
            );
            let _ = parse_text(&text);
        }
    }
}
