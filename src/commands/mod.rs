//! What each subcommand does, one file per area: the daemon, the queue,
//! the rules, reading the state, and the tools.

mod daemon;
mod event_reader;
mod feed;
mod inspect;
mod queue;
mod rules;
mod tools;

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Cli, Command, Format};
use crate::domain::config::Config;

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Run {
            drain,
            no_watch,
            now,
        } => daemon::run(config, drain, !no_watch, now.as_deref()),
        Command::Enqueue { file, format } => queue::enqueue(&config, file.as_deref(), format),
        Command::Retry { events, all } => queue::retry(&config, &events, all),
        Command::DryRun {
            file,
            rules,
            format,
        } => rules::dry_run(&config, file.as_deref(), rules.as_deref(), format),
        Command::Validate { rules, format } => rules::validate(&config, rules.as_deref(), format),
        Command::Test {
            filter,
            rules,
            format,
        } => rules::test(&config, filter.as_deref(), rules.as_deref(), format),
        Command::Replay {
            rules,
            candidate_config,
            from,
            to,
            since,
            until,
            format,
        } => {
            let window =
                crate::tools::replay::Window::new(from, to, since.as_deref(), until.as_deref())?;
            let candidate = rules::Candidate {
                rules: rules.as_deref(),
                config: candidate_config.as_deref(),
            };
            rules::replay(&config, &candidate, &window, format)
        }
        Command::Export => inspect::export(&config),
        Command::Changes {
            after,
            limit,
            follow,
        } => feed::changes(&config, after, limit, follow),
        Command::Webhooks { format } => feed::webhooks(&config, format),
        Command::Timers { format } => inspect::timers(&config, format),
        Command::Events { outcome, format } => {
            inspect::events(&config, outcome.map(Into::into), format)
        }
        Command::Status { format } => inspect::status(&config, format),
        Command::Explain {
            subject,
            id,
            format,
        } => inspect::explain(&config, subject.into(), &id, format),
        Command::Init { dir } => tools::init(&dir),
        Command::Completions { shell } => tools::completions(shell),
        Command::Man { dir } => tools::man(dir.as_deref()),
    }
}

/// Prints `value` as pretty JSON, or as the text `to_text` makes of it.
pub fn emit<T: serde::Serialize>(
    format: Format,
    value: &T,
    to_text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    match format {
        Format::Json => print(&format!("{}\n", serde_json::to_string_pretty(value)?)),
        Format::Text => print(&to_text(value)),
    }
}

/// Writes `text` to standard output. A reader that went away (`| head`)
/// is an error the caller passes up, and `main` takes as a normal end;
/// `println!` would panic instead.
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
}

/// The store, or an empty one in memory if none was created yet, so that
/// reading commands create nothing.
pub fn open_for_reading(config: &Config) -> anyhow::Result<std::rc::Rc<dyn crate::store::Reader>> {
    crate::store::open_reader(config)
}

/// The text of a file, or of standard input for `-` or no file.
pub fn read_input(file: Option<&Path>) -> anyhow::Result<(String, String)> {
    let Input { name, reader, .. } = open_input(file)?;
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        anyhow::bail!(
            "{name}: more than {} MiB; split it (`enqueue` of inbox events reads any size)",
            MAX_INPUT_BYTES >> 20
        );
    }
    let text = decode(&bytes).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    Ok((name, text))
}

/// An input: a file, or standard input for `-` or no file.
pub struct Input {
    /// What errors call it.
    pub name: String,
    pub reader: Box<dyn std::io::BufRead + Send>,
    /// Whether it is a regular file (standard input may be one), read at
    /// the disk's pace rather than at a producer's.
    pub regular: bool,
}

/// A file, or standard input for `-` or no file, as a buffered reader.
pub fn open_input(file: Option<&Path>) -> anyhow::Result<Input> {
    match file {
        Some(path) if path != Path::new("-") => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Input {
                name: path.display().to_string(),
                regular: file.metadata().is_ok_and(|m| m.is_file()),
                reader: Box::new(std::io::BufReader::with_capacity(1 << 16, file)),
            })
        }
        _ => Ok(Input {
            name: "stdin".to_string(),
            regular: stdin_is_a_file(),
            reader: Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin())),
        }),
    }
}

fn stdin_is_a_file() -> bool {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin().as_fd().try_clone_to_owned();
    stdin
        .and_then(|fd| std::fs::File::from(fd).metadata())
        .is_ok_and(|m| m.is_file())
}

/// The most a command reads whole (HubSpot deliveries, dry-run input):
/// far above any real one, and a bound on the memory it takes.
const MAX_INPUT_BYTES: u64 = 64 << 20;

/// UTF-8 text, without a byte-order mark; an error names the bad line.
fn decode(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let valid = &bytes[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        format!("line {line}: not valid UTF-8")
    })
}
