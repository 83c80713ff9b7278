//! The config each ruleset version ran under (its `[settings]` and ticket
//! stages), recorded with the first event it processed, so that `replay`
//! can run the history again under the config each event met.

use rusqlite::{params, OptionalExtension};

use super::{Result, Store};
use crate::domain::state::Stages;

/// The parts of the config a RuleSet's scripts and stages depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedConfig {
    pub settings: toml::Table,
    pub stages: Stages,
}

impl Store {
    /// Records what `version` runs under, unless it is known already.
    pub(super) fn insert_ruleset(&self, version: &str, config: &RecordedConfig) -> Result<()> {
        let settings = serde_json::to_string(&config.settings).unwrap_or_else(|_| "{}".into());
        let stages = serde_json::to_string(&config.stages).unwrap_or_else(|_| "[]".into());
        Ok(self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO rulesets (version, settings, stages) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![version, settings, stages])
            .map(drop)?)
    }

    /// What `version` ran under, if it was recorded.
    pub fn recorded_ruleset(&self, version: &str) -> Result<Option<RecordedConfig>> {
        let row: Option<(String, String)> = self
            .conn
            .prepare_cached("SELECT settings, stages FROM rulesets WHERE version = ?1")?
            .query_row([version], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.and_then(|(settings, stages)| {
            Some(RecordedConfig {
                settings: serde_json::from_str(&settings).ok()?,
                stages: serde_json::from_str(&stages).ok()?,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Persist;

    #[test]
    fn a_ruleset_s_config_is_recorded_once_and_read_back() {
        let store = Store::open_in_memory().unwrap();
        let mut settings = toml::Table::new();
        settings.insert("lead".into(), toml::Value::String("ann".into()));
        settings.insert("auto_ticket".into(), toml::Value::Boolean(true));
        let config = RecordedConfig {
            settings,
            stages: Stages::default(),
        };
        store.remember_ruleset("v1", &config).unwrap();
        let mut other = config.clone();
        other.settings.clear();
        store.remember_ruleset("v1", &other).unwrap();
        assert_eq!(store.recorded_ruleset("v1").unwrap(), Some(config));
        assert_eq!(store.recorded_ruleset("v2").unwrap(), None);
    }
}
