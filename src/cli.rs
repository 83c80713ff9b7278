//! The command line: global options and subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "inboxd",
    version,
    about = "Applies helpdesk lifecycle policies (TOML pipelines + Rhai rules) to inbox events",
    long_about = "inboxd applies the lifecycle policies of a shared inbox (owner sync, cascade \
                  close / reopen / delete, ...) to inbox events taken from a durable local queue, \
                  with the state in SQLite. The policies are TOML pipelines and Rhai scripts in \
                  rules/, changed without recompiling."
)]
pub struct Cli {
    /// The config file; relative paths inside it resolve against its directory.
    #[arg(
        long,
        global = true,
        env = "INBOXD_CONFIG",
        default_value = crate::domain::config::DEFAULT_PATH,
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// How the daemon's log is written (levels: RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: consume the queue and apply the rules; reload them
    /// when their files change or on SIGHUP; SIGINT/SIGTERM stop after the
    /// event in hand. On PostgreSQL (`[store] url`), a daemon stands by
    /// while another holds the lease, and takes over when it goes.
    Run {
        /// Process everything queued, then exit.
        #[arg(long)]
        drain: bool,
        /// Do not watch config/ and rules/ for changes (SIGHUP still reloads).
        #[arg(long)]
        no_watch: bool,
        /// With --drain: take this RFC 3339 time as now (timers due by
        /// then fire; catch-up, tests) instead of the wall clock.
        #[arg(long, requires = "drain", value_name = "TIME", value_parser = parse_now)]
        now: Option<String>,
    },
    /// Add events (JSON Lines) to the queue, all or nothing.
    Enqueue {
        /// The events; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// `inbox`: inbox events, one per line; `hubspot`: HubSpot webhook
        /// batches, mapped to inbox events (unmapped notifications are listed).
        #[arg(long, value_enum, default_value_t = InputFormat::Inbox)]
        format: InputFormat,
    },
    /// Queue failed events again (after the rules are fixed). Idempotency
    /// holds: an event is never applied twice.
    Retry {
        /// The failed events to retry.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        events: Vec<String>,
        /// Retry every failed event.
        #[arg(long)]
        all: bool,
    },
    /// Show what events would do against the current state, changing nothing.
    DryRun {
        /// The events (JSON Lines); `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// Try the rules of this directory instead of the configured ones.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check the config, pipelines and scripts; list every error found.
    Validate {
        /// Check the rules of this directory instead of the configured ones.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the rule tests of rules/tests/*.toml (or of DIR/tests).
    Test {
        /// Only the tests whose name contains this.
        filter: Option<String>,
        /// Test the rules of this directory instead of the configured ones.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Replay the recorded history under candidate rules (or config), on a
    /// scratch copy, and show every event whose outcome or changes would
    /// differ.
    Replay {
        /// The candidate rules (default: the configured ones).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// A candidate config: its [settings] and ticket stages are used for
        /// every event (and its rules, without --rules). Without it, each
        /// event runs under the settings and stages it was processed under.
        #[arg(long, value_name = "FILE")]
        candidate_config: Option<PathBuf>,
        /// Compare only events processed at or after this position (see `events`).
        #[arg(long, value_name = "SEQ")]
        from: Option<i64>,
        /// Compare only events processed at or before this position.
        #[arg(long, value_name = "SEQ")]
        to: Option<i64>,
        /// Compare only events processed at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Compare only events processed at or before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Why a conversation or ticket is as it is (its history of changes, each
    /// with its event, rule, chain of events and ruleset), or what an event did.
    Explain {
        /// What to explain: a conversation, a ticket, or an event.
        #[arg(value_enum)]
        subject: SubjectArg,
        /// Its id.
        id: String,
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List processed events with their outcome and reason.
    Events {
        /// Only events with this outcome.
        #[arg(long, value_enum)]
        outcome: Option<OutcomeArg>,
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show whether a daemon runs (on PostgreSQL: which one holds the
    /// lease), the queue depth, events by outcome, the live ruleset
    /// version, the last reload error and any store trouble.
    Status {
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the whole state as one JSON document.
    Export,
    /// Print the change feed as JSON Lines: one entry per processed event,
    /// with the fields it changed and the notifications its rules sent.
    Changes {
        /// Only entries after this cursor.
        #[arg(long, default_value_t = 0, value_name = "CURSOR")]
        after: i64,
        /// At most this many entries (with --follow: then exit).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Keep waiting for new entries until SIGINT/SIGTERM.
        #[arg(long)]
        follow: bool,
    },
    /// List the pending timers, by due time.
    Timers {
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List the webhooks: messages due (lag), last error, next attempt.
    Webhooks {
        /// Output for people (text) or for programs (json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write a working config/ and rules/ (the default policies and their
    /// tests) into DIR, for a new installation.
    Init {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write it and one page per subcommand
    /// (`inboxd-run.1`, ...) into DIR.
    Man {
        /// Write every page here instead of printing the main one.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `--now`: an RFC 3339 time.
fn parse_now(text: &str) -> Result<String, String> {
    crate::domain::event::parse_time(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// JSON for programs.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// Inbox events, one JSON object per line.
    Inbox,
    /// HubSpot webhook deliveries.
    Hubspot,
}

/// `events --outcome`: the outcomes of `domain::outcome::Outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutcomeArg {
    /// Its change and cascade are in the state.
    Applied,
    /// Invalid against the state, or refused by a rule.
    Rejected,
    /// A script error, a limit or a too deep cascade; retryable.
    Failed,
    /// Its id was applied or rejected before.
    Duplicate,
}

impl From<OutcomeArg> for crate::domain::outcome::Outcome {
    fn from(arg: OutcomeArg) -> Self {
        use crate::domain::outcome::Outcome;
        match arg {
            OutcomeArg::Applied => Outcome::Applied,
            OutcomeArg::Rejected => Outcome::Rejected,
            OutcomeArg::Failed => Outcome::Failed,
            OutcomeArg::Duplicate => Outcome::Duplicate,
        }
    }
}

/// `explain conversation|ticket|event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SubjectArg {
    /// A conversation's history.
    Conversation,
    /// A ticket's history, with the conversations joining it.
    Ticket,
    /// What an event did.
    Event,
}

impl From<SubjectArg> for crate::tools::explain::Subject {
    fn from(arg: SubjectArg) -> Self {
        use crate::tools::explain::Subject;
        match arg {
            SubjectArg::Conversation => Subject::Conversation,
            SubjectArg::Ticket => Subject::Ticket,
            SubjectArg::Event => Subject::Event,
        }
    }
}
