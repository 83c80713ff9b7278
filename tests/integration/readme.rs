//! The README's examples, run as a user would run them, so that the README
//! cannot drift from the program:
//!
//! - every `console` block, in order, in one scratch directory, with
//!   `inboxd` on PATH: each `$ ` line is a command (a heredoc goes on to
//!   its `EOF`), the lines after it its output (stdout and stderr), which
//!   must match once times and version hashes are masked; a `...` line
//!   stands for any lines;
//! - every `rust` block (a script) passes `validate` as a rule, with the
//!   pipeline lines its comments give;
//! - every `toml` block is what it shows: a config, a pipeline or rule
//!   tests, accepted by `validate` or `test`; every `json` block parses;
//! - every `sh` block (installation steps, which need root, systemd or
//!   cargo) is not run, but each `inboxd` or `inboxd-bench` command in it
//!   is checked against the command line (`--help` appended: clap refuses
//!   unknown arguments).

use std::path::{Path, PathBuf};

use crate::common::*;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The fenced blocks of `text`: (language, body).
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_string(), String::new())),
            (Some(_), Some("")) => out.push(current.take().unwrap()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// A command of a console block and the output shown after it.
struct Step {
    command: String,
    expected: Vec<String>,
}

fn steps(body: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut heredoc = false;
    for line in body.lines() {
        if heredoc {
            let step = steps.last_mut().unwrap();
            step.command.push('\n');
            step.command.push_str(line);
            heredoc = line != "EOF";
        } else if let Some(command) = line.strip_prefix("$ ") {
            heredoc = command.contains("<<'EOF'");
            steps.push(Step {
                command: command.to_string(),
                expected: Vec::new(),
            });
        } else {
            steps
                .last_mut()
                .expect("a console block starts with a command")
                .expected
                .push(line.to_string());
        }
    }
    steps
}

/// Times and version hashes vary from run to run.
fn masked(text: &str) -> Vec<String> {
    let time =
        regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)").unwrap();
    let hash = regex::Regex::new(r"\b[0-9a-f]{12}\b").unwrap();
    text.lines()
        .map(|line| {
            let line = time.replace_all(line, "<time>");
            hash.replace_all(&line, "<hash>").trim_end().to_string()
        })
        .collect()
}

/// Whether `actual` matches `expected`, where a `...` line matches any
/// number of lines.
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual.first() == Some(first) && matches(rest, &actual[1..]),
    }
}

fn bin_dir() -> PathBuf {
    assert_cmd::cargo::cargo_bin("inboxd")
        .parent()
        .unwrap()
        .to_path_buf()
}

fn path_with_inboxd() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn the_console_examples_print_what_the_readme_shows() {
    let scratch = tempfile::tempdir().unwrap();
    let mut cwd = scratch.path().to_path_buf();
    let mut ran = 0;
    for (lang, body) in blocks(&readme()) {
        if lang != "console" {
            continue;
        }
        for step in steps(&body) {
            if let Some(dir) = step.command.strip_prefix("cd ") {
                cwd = cwd.join(dir.trim());
                continue;
            }
            let out = std::process::Command::new("bash")
                .current_dir(&cwd)
                .env("PATH", path_with_inboxd())
                .env_remove("INBOXD_CONFIG")
                .env_remove("RUST_LOG")
                .arg("-c")
                .arg(format!("exec 2>&1\n{}", step.command))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "README command failed: $ {}\n{text}",
                step.command
            );
            let expected: Vec<String> = masked(&step.expected.join("\n"));
            assert!(
                matches(&expected, &masked(&text)),
                "README output differs for: $ {}\n--- README shows:\n{}\n--- the program prints:\n{text}",
                step.command,
                step.expected.join("\n"),
            );
            ran += 1;
        }
    }
    assert!(ran >= 15, "only {ran} README commands found");
}

#[test]
fn the_script_examples_pass_validate() {
    let mut checked = 0;
    for (lang, body) in blocks(&readme()) {
        if lang != "rust" {
            continue;
        }
        let pipeline: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("// "))
            .filter(|l| l.starts_with("on = ") || l.starts_with("when = "))
            .collect();
        assert!(
            !pipeline.is_empty(),
            "a script example without its rule:\n{body}"
        );
        let inbox = if body.contains("settings.lead") {
            Inbox::with_settings("lead = \"ann\"")
        } else {
            Inbox::new()
        };
        if body.contains("notify(\"chat\"") {
            let config = inbox.read("config/inboxd.toml");
            inbox.write(
                "config/inboxd.toml",
                &format!("{config}\n[[webhook]]\nname = \"chat\"\nurl = \"https://chat.example.com/hook\"\nsecret_env = \"CHAT_SECRET\"\n"),
            );
        }
        inbox.write("rules/example.rhai", &body);
        inbox.write(
            "rules/zz_example.toml",
            &format!(
                "[[rule]]\nname = \"example\"\nscript = \"example.rhai\"\n{}\n",
                pipeline.join("\n")
            ),
        );
        let out = inbox.cmd().arg("validate").output().unwrap();
        assert!(
            out.status.success(),
            "{body}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn the_toml_and_json_examples_are_what_they_show() {
    let mut checked = 0;
    for (lang, body) in blocks(&readme()) {
        let inbox = Inbox::new();
        let args: &[&str] = match lang.as_str() {
            "toml" if body.contains("[[test]]") => {
                inbox.write("rules/tests/readme.toml", &body);
                &["test"]
            }
            "toml" if body.contains("[[rule]]") => {
                inbox.write("rules/pipeline.toml", &body);
                &["validate"]
            }
            "toml" if body.contains("[store]") => {
                inbox.write("config/inboxd.toml", &body);
                &["validate"]
            }
            "toml" if body.starts_with("[[webhook]]") => {
                let config = inbox.read("config/inboxd.toml");
                inbox.write("config/inboxd.toml", &format!("{config}\n{body}"));
                &["validate"]
            }
            // A table of the config alone: the config with it in place of
            // the shipped one.
            "toml" if body.starts_with("[http]") => {
                let config = inbox.read("config/inboxd.toml");
                let shipped = config
                    .find("[http]")
                    .expect("the shipped config has [http]");
                inbox.write(
                    "config/inboxd.toml",
                    &format!("{}{body}", &config[..shipped]),
                );
                &["validate"]
            }
            "json" => {
                let value: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert!(value["tickets"].is_array() && value["conversations"].is_array());
                checked += 1;
                continue;
            }
            "toml" => panic!("a TOML example of no known kind:\n{body}"),
            _ => continue,
        };
        let out = inbox.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{body}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 4, "{checked}");
}

#[test]
fn the_commands_of_the_installation_steps_exist() {
    let mut checked = 0;
    for (lang, body) in blocks(&readme()) {
        if lang != "sh" {
            continue;
        }
        for line in body.lines() {
            let line = line.split(" # ").next().unwrap().trim();
            // A command sent to the background is the same command.
            let line = line.strip_suffix(" &").unwrap_or(line);
            let words: Vec<&str> = line.split_whitespace().collect();
            let program = |w: &&str| {
                !w.contains('=') && (w.ends_with("inboxd") || w.ends_with("inboxd-bench"))
            };
            let Some(at) = words.iter().position(program) else {
                continue;
            };
            if words[..at].iter().any(|w| !w.contains('=')) {
                continue; // inboxd is an argument here (a path, a user)
            }
            // Both binaries of the workspace are built beside each other.
            let name = if words[at].ends_with("-bench") {
                "inboxd-bench"
            } else {
                "inboxd"
            };
            let out = std::process::Command::new(bin_dir().join(name))
                .args(&words[at + 1..])
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "README: {line}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "{checked}");
}

/// The README's tables of the script API are the manual in `api.rs`.
#[test]
fn the_script_api_tables_are_the_manual() {
    use inboxd::scripting::manual::{manual_table, Kind};
    let text = readme();
    for kind in [Kind::Read, Kind::Action, Kind::Other] {
        let table = manual_table(kind);
        assert!(
            text.contains(&table),
            "the README's {kind:?} table is not the manual's; it should read:\n{table}"
        );
    }
}
