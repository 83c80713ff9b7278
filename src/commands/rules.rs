//! `dry-run`, `validate`, `test` and `replay`: trying rules.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{emit, open_for_reading, read_input};
use crate::cli::Format;
use crate::domain::config::Config;
use crate::domain::event::parse_batch;
use crate::engine::report::Report;
use crate::scripting::ruleset::RuleSet;

pub fn dry_run(
    config_file: &Path,
    file: Option<&Path>,
    rules_dir: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let rules = crate::daemon::load(config_file, rules_dir)?;
    let (name, text) = read_input(file)?;
    let events =
        parse_batch(&text, &rules.config.stages).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let store = open_for_reading(&rules.config)?;
    let reports = crate::tools::dry_run::simulate_on(store, rules, &events)
        .context("cannot read the store")?;
    emit(format, &reports, |reports| {
        reports.iter().map(Report::to_text).collect()
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn validate(
    config_file: &Path,
    rules_dir: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let loaded = Config::load(config_file)
        .map_err(|problem| vec![problem])
        .and_then(|config| RuleSet::load(config, rules_dir));
    if format == Format::Json {
        let report = match &loaded {
            Ok(rules) => serde_json::json!({
                "valid": true,
                "ruleset": rules.version,
                "rules": rules.rules.len(),
                "enabled": rules.rules.iter().filter(|r| r.decl.enabled).count(),
                "errors": [],
                "warnings": rules.warnings,
            }),
            Err(problems) => {
                serde_json::json!({"valid": false, "errors": problems, "warnings": []})
            }
        };
        super::print(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    }
    match loaded {
        Ok(rules) => {
            if format == Format::Text {
                print_problems("warning", &rules.warnings);
                let enabled = rules.rules.iter().filter(|r| r.decl.enabled).count();
                super::print(&format!(
                    "valid: {} rule(s), {enabled} enabled, in {}; ruleset version {}\n",
                    rules.rules.len(),
                    rules.rules_dir.display(),
                    rules.version
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            if format == Format::Text {
                print_problems("error", &problems);
                eprintln!("{} error(s)", problems.len());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Each problem as rustc shows one: the place and message, then the
/// source line with a caret under the column.
fn print_problems(kind: &str, problems: &[crate::domain::diagnostic::Diagnostic]) {
    for problem in problems {
        eprintln!("{kind}: {problem}");
        if let Some(snippet) = problem.snippet() {
            eprintln!("{snippet}");
        }
    }
}

pub fn test(
    config_file: &Path,
    filter: Option<&str>,
    rules_dir: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let rules_dir = rules_dir.map_or_else(|| config.rules_dir.clone(), Path::to_path_buf);
    let results = crate::tools::ruletest::run(&config, &rules_dir, filter)?;
    emit(format, &results, |r| crate::tools::ruletest::render(r))?;
    let failed = results.iter().any(|r| r.failure.is_some());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What `replay` tries: rules, a config, or both.
pub struct Candidate<'a> {
    pub rules: Option<&'a Path>,
    pub config: Option<&'a Path>,
}

pub fn replay(
    config_file: &Path,
    candidate: &Candidate,
    window: &crate::tools::replay::Window,
    format: Format,
) -> anyhow::Result<ExitCode> {
    // The history is the configured store's; the candidate config brings
    // settings, stages (and rules, without --rules) only.
    let config = Config::load(config_file)?;
    let rules = crate::daemon::load(candidate.config.unwrap_or(config_file), candidate.rules)?;
    let store = open_for_reading(&config)?;
    let candidate = crate::tools::replay::Candidate {
        rules,
        config_given: candidate.config.is_some(),
    };
    let report = crate::tools::replay::replay(store.as_ref(), candidate, window)?;
    emit(format, &report, crate::tools::replay::ReplayReport::to_text)?;
    Ok(ExitCode::SUCCESS)
}
