//! `config/inboxd.toml`: where the store and the rules are, the ticket
//! pipeline, and the `[settings]` every script can read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::diagnostic::Diagnostic;
pub use crate::domain::http_config::HttpConfig;
use crate::domain::http_config::RawHttp;
use crate::domain::state::{Stage, Stages};
use crate::domain::webhook_config::RawWebhook;
pub use crate::domain::webhook_config::WebhookConfig;

/// The deepest cascade a config may allow: deeper, a cycle of rules would
/// take too long to be stopped.
pub const MAX_CASCADE_DEPTH: usize = 1_000;

/// The default path of the config file, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/inboxd.toml";

/// The loaded config, with every path made absolute against the config
/// file's directory.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    /// The SQLite database; with `store_url`, where this daemon keeps its
    /// own files (health report, poison guard) beside it.
    pub store_path: PathBuf,
    /// `[store] url` (or `INBOXD_STORE_URL`): the store is on PostgreSQL.
    pub store_url: Option<StoreUrl>,
    pub synchronous: Synchronous,
    pub rules_dir: PathBuf,
    pub max_cascade_depth: usize,
    /// The longest all the rule runs of one event may take together.
    pub event_time_limit: Duration,
    pub stages: Stages,
    /// `[settings]`, with the defaults the shipped rules rely on filled in.
    pub settings: toml::Table,
    /// `[http]`: the daemon serves HTTP only when it is there.
    pub http: Option<HttpConfig>,
    /// `[[webhook]]`: where decisions and notifications are sent.
    pub webhooks: Vec<WebhookConfig>,
}

/// The environment variable that overrides `[store] url`.
pub const STORE_URL_ENV: &str = "INBOXD_STORE_URL";

/// A PostgreSQL URL. It may hold a password: it is never printed whole
/// (`Debug` and `Display` show it without).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    pub fn new(url: String) -> Result<StoreUrl, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(
                "must start with postgresql:// (PostgreSQL is the only server store)".into(),
            );
        }
        Ok(StoreUrl(url))
    }

    /// The URL itself, password included: for connecting only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StoreUrl {
    /// Without user info or parameters: `postgresql://host:port/db`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("postgresql", &self.0));
        let rest = rest.split('?').next().unwrap_or("");
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        write!(f, "{scheme}://{rest}")
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// SQLite's `synchronous` setting: what a commit waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit is on disk before it is acknowledged (the default).
    #[default]
    Full,
    /// In WAL mode, the last commits may be lost on power loss (never
    /// corrupted).
    Normal,
}

impl Synchronous {
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    pipeline: Option<RawPipeline>,
    #[serde(default)]
    settings: toml::Table,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(default = "default_store_path")]
    path: PathBuf,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    synchronous: Synchronous,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: default_store_path(),
            url: None,
            synchronous: Synchronous::default(),
        }
    }
}

fn default_store_path() -> PathBuf {
    PathBuf::from("../var/inboxd.db")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default = "default_rules_dir")]
    dir: PathBuf,
    #[serde(default = "default_max_cascade_depth")]
    max_cascade_depth: usize,
    #[serde(default = "default_event_time_limit")]
    event_time_limit: String,
}

impl Default for RawRules {
    fn default() -> Self {
        RawRules {
            dir: default_rules_dir(),
            max_cascade_depth: default_max_cascade_depth(),
            event_time_limit: default_event_time_limit(),
        }
    }
}

fn default_rules_dir() -> PathBuf {
    PathBuf::from("../rules")
}

fn default_max_cascade_depth() -> usize {
    16
}

fn default_event_time_limit() -> String {
    "10s".into()
}

/// The bounds of `[rules] event_time_limit`: at least one script run's own
/// limit, at most what a producer-facing daemon can sensibly spend.
const EVENT_TIME_LIMITS: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(3600));

fn event_time_limit(text: &str) -> Result<Duration, String> {
    let limit = humantime::parse_duration(text).map_err(|e| {
        format!("[rules] event_time_limit must be a duration like \"10s\" or \"2m\": {text:?}: {e}")
    })?;
    let (low, high) = EVENT_TIME_LIMITS;
    if limit < low || limit > high {
        return Err(format!(
            "[rules] event_time_limit must be between {} and {}",
            humantime::format_duration(low),
            humantime::format_duration(high)
        ));
    }
    Ok(limit)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    stages: Vec<Stage>,
}

/// The settings the shipped rules read, with their defaults.
fn default_settings() -> [(&'static str, toml::Value); 3] {
    [
        ("account_created", toml::Value::String("2023-05-01".into())),
        ("auto_ticket", toml::Value::Boolean(false)),
        ("auto_close_after", toml::Value::String(String::new())),
    ]
}

impl Config {
    /// Reads and checks the config file.
    pub fn load(file: &Path) -> Result<Config, Diagnostic> {
        let text = crate::regular_file::read(file)
            .map_err(|e| Diagnostic::file(file, format!("cannot read the config file: {e}")))?;
        let mut config = Self::parse(file, &text)?;
        if let Some(url) = std::env::var(STORE_URL_ENV).ok().filter(|u| !u.is_empty()) {
            config.store_url = Some(
                StoreUrl::new(url)
                    .map_err(|e| Diagnostic::file(file, format!("{STORE_URL_ENV}: {e}")))?,
            );
        }
        Ok(config)
    }

    /// Checks `text` as the content of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, Diagnostic> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| Diagnostic::from_toml(file, text, &e))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let stages = match raw.pipeline {
            Some(p) => Stages::new(p.stages)
                .map_err(|e| Diagnostic::file(file, format!("[pipeline] stages: {e}")))?,
            None => Stages::default(),
        };
        if !(1..=MAX_CASCADE_DEPTH).contains(&raw.rules.max_cascade_depth) {
            return Err(Diagnostic::file(
                file,
                format!("[rules] max_cascade_depth must be between 1 and {MAX_CASCADE_DEPTH}"),
            ));
        }
        let event_time_limit =
            event_time_limit(&raw.rules.event_time_limit).map_err(|e| Diagnostic::file(file, e))?;
        let settings = with_default_settings(raw.settings);
        check_settings(&settings).map_err(|e| Diagnostic::file(file, e))?;
        let http =
            (raw.http.map(RawHttp::check).transpose()).map_err(|e| Diagnostic::file(file, e))?;
        let webhooks = crate::domain::webhook_config::check(raw.webhook)
            .map_err(|e| Diagnostic::file(file, e))?;
        Ok(Config {
            file: file.to_path_buf(),
            store_path: base.join(raw.store.path),
            store_url: raw
                .store
                .url
                .map(StoreUrl::new)
                .transpose()
                .map_err(|e| Diagnostic::file(file, format!("[store] url: {e}")))?,
            synchronous: raw.store.synchronous,
            rules_dir: base.join(raw.rules.dir),
            max_cascade_depth: raw.rules.max_cascade_depth,
            event_time_limit,
            stages,
            settings,
            http,
            webhooks,
        })
    }
}

fn with_default_settings(mut settings: toml::Table) -> toml::Table {
    for (key, value) in default_settings() {
        settings.entry(key).or_insert(value);
    }
    settings
}

/// The shipped rules compare `account_created` as text, so it must be a
/// plain `YYYY-MM-DD` date.
fn check_settings(settings: &toml::Table) -> Result<(), String> {
    match settings.get("account_created") {
        Some(toml::Value::String(date)) if is_iso_date(date) => {}
        Some(other) => {
            return Err(format!(
                "[settings] account_created must be a date written \"YYYY-MM-DD\", not {other}"
            ))
        }
        None => {}
    }
    match settings.get("auto_close_after") {
        Some(toml::Value::String(after))
            if after.is_empty() || humantime::parse_duration(after).is_ok() => {}
        None => {}
        Some(other) => {
            return Err(format!(
                "[settings] auto_close_after must be a duration like \"5d\" (or \"\": off), not {other}"
            ))
        }
    }
    match settings.get("auto_ticket") {
        Some(toml::Value::Boolean(_)) | None => Ok(()),
        Some(other) => Err(format!(
            "[settings] auto_ticket must be true or false, not {other}"
        )),
    }
}

fn is_iso_date(text: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    text.len() == 10 && time::Date::parse(text, &format).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Diagnostic> {
        Config::parse(Path::new("/etc/inboxd/config/inboxd.toml"), text)
    }

    #[test]
    fn empty_config_takes_the_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.stages, Stages::default());
        assert_eq!(
            config.store_path,
            Path::new("/etc/inboxd/config/../var/inboxd.db")
        );
        assert_eq!(config.rules_dir, Path::new("/etc/inboxd/config/../rules"));
        assert_eq!(config.settings["auto_ticket"], toml::Value::Boolean(false));
        assert_eq!(config.synchronous, Synchronous::Full);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err = parse("[store]\npaht = \"x\"\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("paht"), "{err}");
    }

    #[test]
    fn settings_are_checked() {
        let err = parse("[settings]\naccount_created = \"2024-4-1\"\n").unwrap_err();
        assert!(err.message.contains("YYYY-MM-DD"), "{err}");
        let err = parse("[settings]\nauto_ticket = \"yes\"\n").unwrap_err();
        assert!(err.message.contains("true or false"), "{err}");
    }

    #[test]
    fn the_cascade_depth_is_bounded() {
        for depth in ["0", "1001"] {
            let err = parse(&format!("[rules]\nmax_cascade_depth = {depth}\n")).unwrap_err();
            assert!(err.message.contains("between 1 and 1000"), "{err}");
        }
        assert_eq!(
            parse("[rules]\nmax_cascade_depth = 1000\n")
                .unwrap()
                .max_cascade_depth,
            1000
        );
    }

    #[test]
    fn the_event_time_limit_is_a_bounded_duration() {
        assert_eq!(parse("").unwrap().event_time_limit, Duration::from_secs(10));
        assert_eq!(
            parse("[rules]\nevent_time_limit = \"90s\"\n")
                .unwrap()
                .event_time_limit,
            Duration::from_secs(90)
        );
        for bad in ["\"soon\"", "\"1ms\"", "\"2d\""] {
            let err = parse(&format!("[rules]\nevent_time_limit = {bad}\n")).unwrap_err();
            assert!(err.message.contains("event_time_limit"), "{err}");
        }
    }

    #[test]
    fn stages_must_be_distinct() {
        let err = parse("[pipeline]\nstages = [{id=\"a\"},{id=\"a\"}]\n").unwrap_err();
        assert!(err.message.contains("twice"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_config_text_never_panics(text in "\\PC*") {
            let _ = parse(&text);
        }

        #[test]
        fn toml_shaped_noise_never_panics(
            table in proptest::sample::select(vec!["store", "rules", "pipeline", "settings", "x"]),
            key in "[a-z_]{1,20}",
            value in "(\"[a-z./]{0,8}\"|[0-9]{1,3}|true|\\[\\]|\\[\\{id=\"a\"\\}\\])",
        ) {
            let _ = parse(&format!("[{table}]\n{key} = {value}\n"));
        }
    }
}
