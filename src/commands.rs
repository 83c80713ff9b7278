//! What each subcommand does.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::{BenchSync, Cli, Command, Format, InputFormat, OutcomeFilter};
use crate::config::Config;
use crate::daemon::{self, Control, Daemon};
use crate::engine::Processor;
use crate::event::{now_rfc3339, parse_batch, Event};
use crate::export::Export;
use crate::lock::DaemonLock;
use crate::report::Report;
use crate::ruleset::RuleSet;
use crate::store::Store;

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Run { drain, no_watch } => run(config, drain, !no_watch),
        Command::Enqueue { file, format } => enqueue(&config, file.as_deref(), format),
        Command::DryRun {
            file,
            rules,
            format,
        } => dry_run(&config, file.as_deref(), rules.as_deref(), format),
        Command::Validate { rules, format } => validate(&config, rules.as_deref(), format),
        Command::Export => export(&config),
        Command::Init { dir } => {
            crate::init::init(&dir)?;
            eprintln!(
                "wrote config/ and rules/ in {}; try: inboxd --config {} validate",
                dir.display(),
                dir.join("config/inboxd.toml").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "inboxd", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Test {
            filter,
            rules,
            format,
        } => {
            let config = Config::load(&config)?;
            let rules_dir = rules.unwrap_or_else(|| config.rules_dir.clone());
            let results = crate::ruletest::run(&config, &rules_dir, filter.as_deref())?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
                Format::Text => print!("{}", crate::ruletest::render(&results)),
            }
            let failed = results.iter().any(|r| r.failure.is_some());
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Events { outcome, format } => events(&config, outcome, format),
        Command::Status { format } => status(&config, format),
        Command::Retry { events, all } => retry(&config, &events, all),
        Command::Replay {
            rules,
            from,
            to,
            since,
            until,
            format,
        } => {
            let candidate = daemon::load(&config, rules.as_deref())?;
            let store = open_for_reading(&candidate.config)?;
            let window = crate::replay::Window {
                from_seq: from,
                to_seq: to,
                since,
                until,
            };
            let report = crate::replay::replay(&store, candidate, &window)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Format::Text => print!("{}", report.to_text()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain {
            subject,
            id,
            format,
        } => {
            let config = Config::load(&config)?;
            let store = open_for_reading(&config)?;
            let explanation = crate::explain::explain(&store, subject, &id)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&explanation)?),
                Format::Text => print!("{}", explanation.to_text()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            events,
            seed,
            preload,
            synchronous,
            rate,
            producer_batch,
            reloads,
            format,
        } => {
            let options = crate::bench::Options {
                events,
                seed,
                preload,
                synchronous: match synchronous {
                    BenchSync::Full => crate::config::Synchronous::Full,
                    BenchSync::Normal => crate::config::Synchronous::Normal,
                },
                rate,
                producer_batch,
                reloads,
            };
            let figures = crate::bench::run(&config, &options)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&figures)?),
                Format::Text => print!("{}", figures.to_text()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run(config: PathBuf, drain: bool, watch: bool) -> anyhow::Result<ExitCode> {
    let control = Arc::new(Control::default());
    let mut daemon = Daemon::start(config.clone())?;
    listen_for_signals(Arc::clone(&control))?;
    if drain {
        daemon.announce()?;
        let done = daemon.drain(&control)?;
        tracing::info!(events = done, "queue drained");
        return Ok(ExitCode::SUCCESS);
    }
    let _watches = if watch {
        let rules = daemon.rules();
        let watches = crate::watch::start(
            &config,
            &rules.rules_dir,
            &rules.config.store_path,
            &control,
        )
        .context("cannot watch the config and rules directories (try --no-watch)")?;
        Some(watches)
    } else {
        None
    };
    daemon.announce()?;
    daemon.run(&control)?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT/SIGTERM ask the daemon to stop after the event in hand; a second
/// one exits at once (the open transaction is simply not committed).
/// SIGHUP asks for a reload.
fn listen_for_signals(control: Arc<Control>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    let (mut interrupt, mut terminate, mut hangup) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            ))
        })
        .context("cannot listen for signals")?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                    _ = hangup.recv() => {
                        tracing::info!("SIGHUP: reloading the rules");
                        control.request_reload();
                        continue;
                    }
                }
                if control.stop.load(Ordering::SeqCst) {
                    tracing::warn!("second signal: exiting now");
                    std::process::exit(130);
                }
                tracing::info!("stopping after the event in hand");
                control.request_stop();
            }
        })
    });
    Ok(())
}

fn enqueue(
    config_file: &Path,
    file: Option<&Path>,
    format: InputFormat,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let (name, text) = read_input(file)?;
    let events = match format {
        InputFormat::Inbox => parse_batch(&text, &config.stages),
        InputFormat::Hubspot => crate::hubspot::map(&text, &config.stages).map(|mapped| {
            for skipped in &mapped.skipped {
                eprintln!("skipped {skipped}");
            }
            mapped.events
        }),
    }
    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let store = Store::open(&config.store_path, config.synchronous)?;
    let bar = crate::progress::progress_bar(events.len() as u64, "enqueueing");
    store
        .enqueue_with(&events, &now_rfc3339(), || bar.inc(1))
        .context("cannot write to the queue")?;
    bar.finish_and_clear();
    eprintln!("enqueued {} event(s)", events.len());
    Ok(ExitCode::SUCCESS)
}

fn dry_run(
    config_file: &Path,
    file: Option<&Path>,
    rules_dir: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let rules = daemon::load(config_file, rules_dir)?;
    let (name, text) = read_input(file)?;
    let events =
        parse_batch(&text, &rules.config.stages).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let store = Rc::new(open_for_reading(&rules.config)?);
    let reports = simulate(&store, rules, &events)?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?,
        Format::Text => {
            for report in &reports {
                write!(out, "{}", report.to_text())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The daemon's own processing, in a transaction that is rolled back.
fn simulate(store: &Rc<Store>, rules: RuleSet, events: &[Event]) -> anyhow::Result<Vec<Report>> {
    let mut processor = Processor::new(Rc::clone(store), rules);
    store.begin().context("cannot start a transaction")?;
    let reports: rusqlite::Result<Vec<Report>> =
        events.iter().map(|e| processor.process(e, None)).collect();
    store.rollback().context("cannot roll back the dry-run")?;
    Ok(reports?)
}

fn validate(
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
            }),
            Err(problems) => serde_json::json!({"valid": false, "errors": problems}),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    match loaded {
        Ok(rules) => {
            if format == Format::Text {
                let enabled = rules.rules.iter().filter(|r| r.decl.enabled).count();
                println!(
                    "valid: {} rule(s), {enabled} enabled, in {}; ruleset version {}",
                    rules.rules.len(),
                    rules.rules_dir.display(),
                    rules.version
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            if format == Format::Text {
                print_problems(&problems);
                eprintln!("{} error(s)", problems.len());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_problems(problems: &[crate::diagnostic::Diagnostic]) {
    for problem in problems {
        eprintln!("error: {problem}");
        if let Some(line) = problem.source_line() {
            eprintln!("    | {line}");
        }
    }
}

fn export(config_file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let store = open_for_reading(&config)?;
    let export = Export::read(&store).context("cannot read the state")?;
    println!("{}", serde_json::to_string_pretty(&export)?);
    Ok(ExitCode::SUCCESS)
}

fn events(
    config_file: &Path,
    outcome: Option<OutcomeFilter>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let store = open_for_reading(&config)?;
    let rows = store
        .outcomes(outcome.map(OutcomeFilter::as_str))
        .context("cannot read the processed events")?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        Format::Text => {
            for row in rows {
                let reason = row.reason.map(|r| format!(": {r}")).unwrap_or_default();
                writeln!(
                    out,
                    "{} {} {} {}{reason}",
                    row.processed_at, row.id, row.event_type, row.outcome
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn retry(config_file: &Path, ids: &[String], all: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    if !config.store_path.exists() {
        anyhow::bail!(
            "no failed event: the store {} does not exist yet",
            config.store_path.display()
        );
    }
    let store = Store::open(&config.store_path, config.synchronous)?;
    let failed = store.retryable().context("cannot read the failed events")?;
    let chosen: Vec<&(String, String)> = if all {
        failed.iter().collect()
    } else {
        ids.iter()
            .map(|id| {
                failed.iter().find(|(f, _)| f == id).ok_or_else(|| {
                    anyhow::anyhow!("{id} is not a failed event waiting for a retry (see `inboxd events --outcome failed`)")
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let events = chosen
        .iter()
        .map(|(id, body)| {
            serde_json::from_str::<Event>(body)
                .with_context(|| format!("failed event {id} cannot be read back"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    store
        .enqueue(&events, &now_rfc3339())
        .context("cannot write to the queue")?;
    eprintln!("queued {} failed event(s) again", events.len());
    Ok(ExitCode::SUCCESS)
}

fn status(config_file: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let store = open_for_reading(&config)?;
    let status = Status {
        running: DaemonLock::is_held(&config.store_path),
        daemon: store
            .daemon_status()
            .context("cannot read the daemon status")?,
        queued: store.queue_depth().context("cannot read the queue")?,
        processed: store
            .outcome_counts()
            .context("cannot read the processed events")?,
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        Format::Text => print!("{}", status.to_text()),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct Status {
    running: bool,
    daemon: Option<crate::store::DaemonStatus>,
    queued: u64,
    processed: std::collections::BTreeMap<String, u64>,
}

impl Status {
    fn to_text(&self) -> String {
        let mut out = String::new();
        let daemon = match (&self.daemon, self.running) {
            (Some(d), true) => format!("running (pid {}, since {})", d.pid, d.started_at),
            (_, _) => "not running".to_string(),
        };
        out.push_str(&format!("daemon:    {daemon}\n"));
        if let Some(d) = &self.daemon {
            let when = d.reloaded_at.as_deref().unwrap_or(&d.started_at);
            out.push_str(&format!("ruleset:   {} (loaded {when})\n", d.ruleset));
            let error = d.reload_error.as_deref().unwrap_or("none");
            out.push_str(&format!("last reload error: {error}\n"));
        }
        out.push_str(&format!("queued:    {}\n", self.queued));
        let counts: Vec<String> = ["applied", "rejected", "failed", "duplicate"]
            .iter()
            .map(|o| format!("{} {o}", self.processed.get(*o).copied().unwrap_or(0)))
            .collect();
        out.push_str(&format!("processed: {}\n", counts.join(", ")));
        out
    }
}

/// The store, or an empty one in memory if none was created yet, so that
/// reading commands create nothing.
fn open_for_reading(config: &Config) -> anyhow::Result<Store> {
    if config.store_path.exists() {
        Store::open(&config.store_path, config.synchronous)
    } else {
        Store::open_in_memory()
    }
}

/// The text of a file, or of standard input for `-` or no file.
fn read_input(file: Option<&Path>) -> anyhow::Result<(String, String)> {
    match file {
        Some(path) if path != Path::new("-") => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok((path.display().to_string(), text))
        }
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            Ok(("stdin".to_string(), text))
        }
    }
}
