//! The domain model: conversations, tickets and the ticket pipeline's stages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::change::{changed_fields, Audited};

/// Where a conversation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    Open,
    Closed,
    Trashed,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Trashed => "trashed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            "trashed" => Some(Self::Trashed),
            _ => None,
        }
    }
}

/// A thread in the shared inbox. Field order is the export document's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub status: ConversationStatus,
    pub owner: Option<String>,
    pub ticket: Option<String>,
    pub inbox: Option<String>,
    pub channel: Option<String>,
    pub contact: Option<String>,
    pub subject: Option<String>,
    pub spam: bool,
}

impl Conversation {
    pub fn new(id: &str) -> Self {
        Conversation {
            id: id.to_string(),
            status: ConversationStatus::Open,
            owner: None,
            ticket: None,
            inbox: None,
            channel: None,
            contact: None,
            subject: None,
            spam: false,
        }
    }
}

impl Audited for Conversation {
    fn fields(&self) -> Vec<(String, Value)> {
        let f = |name: &str, value: Value| (name.to_string(), value);
        vec![
            f("status", json!(self.status)),
            f("owner", json!(self.owner)),
            f("ticket", json!(self.ticket)),
            f("inbox", json!(self.inbox)),
            f("channel", json!(self.channel)),
            f("contact", json!(self.contact)),
            f("subject", json!(self.subject)),
            f("spam", json!(self.spam)),
        ]
    }

    fn changes_from(&self, before: &Self) -> Vec<(String, Value, Value)> {
        let mut out = Vec::new();
        changed_fields!(
            out, before, self, status, owner, ticket, inbox, channel, contact, subject, spam
        );
        out
    }

    /// The ticket is an association, written on its own.
    fn is_stored(field: &str) -> bool {
        field != "ticket"
    }
}

/// A CRM record tracking a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub status: String,
    pub owner: Option<String>,
    pub subject: Option<String>,
    pub properties: BTreeMap<String, String>,
    /// Associated conversations, in association order.
    pub conversations: Vec<String>,
    pub deleted: bool,
}

#[cfg(test)]
impl Ticket {
    /// A new ticket with these conversations, for tests.
    pub fn with_conversations(id: &str, conversations: &[&str]) -> Ticket {
        Ticket {
            id: id.into(),
            status: "new".into(),
            owner: None,
            subject: None,
            properties: BTreeMap::new(),
            conversations: conversations.iter().map(|c| c.to_string()).collect(),
            deleted: false,
        }
    }
}

/// A ticket's list of conversations is not audited: it follows from the
/// associations, which are recorded on the conversations (`ticket`), and
/// logging the whole list at each association would grow with the square of
/// its length.
impl Audited for Ticket {
    fn fields(&self) -> Vec<(String, Value)> {
        let mut out = vec![
            ("status".to_string(), json!(self.status)),
            ("owner".to_string(), json!(self.owner)),
            ("subject".to_string(), json!(self.subject)),
            ("deleted".to_string(), json!(self.deleted)),
        ];
        for (key, value) in &self.properties {
            out.push((format!("properties.{key}"), json!(value)));
        }
        out
    }

    fn changes_from(&self, before: &Self) -> Vec<(String, Value, Value)> {
        let mut out = Vec::new();
        changed_fields!(out, before, self, status, owner, subject, deleted);
        if before.properties != self.properties {
            let keys: std::collections::BTreeSet<&String> = before
                .properties
                .keys()
                .chain(self.properties.keys())
                .collect();
            for key in keys {
                let (old, new) = (before.properties.get(key), self.properties.get(key));
                if old != new {
                    out.push((format!("properties.{key}"), json!(old), json!(new)));
                }
            }
        }
        out
    }
}

/// One stage of the ticket pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub id: String,
    #[serde(default)]
    pub closed: bool,
}

/// The ticket pipeline: its stages, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Stage>", into = "Vec<Stage>")]
pub struct Stages(Vec<Stage>);

impl TryFrom<Vec<Stage>> for Stages {
    type Error = String;

    fn try_from(stages: Vec<Stage>) -> Result<Self, String> {
        Stages::new(stages)
    }
}

impl From<Stages> for Vec<Stage> {
    fn from(stages: Stages) -> Self {
        stages.0
    }
}

impl Default for Stages {
    /// HubSpot's support pipeline.
    fn default() -> Self {
        let stage = |id: &str, closed| Stage {
            id: id.into(),
            closed,
        };
        Stages(vec![
            stage("new", false),
            stage("waiting_on_contact", false),
            stage("waiting_on_us", false),
            stage("closed", true),
        ])
    }
}

impl Stages {
    /// Checks that there is at least one stage and no id twice.
    pub fn new(stages: Vec<Stage>) -> Result<Self, String> {
        if stages.is_empty() {
            return Err("the ticket pipeline needs at least one stage".into());
        }
        for (i, stage) in stages.iter().enumerate() {
            if stage.id.trim().is_empty() {
                return Err(format!("stage {} has an empty id", i + 1));
            }
            if stages[..i].iter().any(|s| s.id == stage.id) {
                return Err(format!("stage {:?} is listed twice", stage.id));
            }
        }
        if !stages.iter().any(|s| s.closed) {
            return Err(
                "no stage is closed (`closed = true`): tickets could never be closed, and the close cascade (P6) never runs"
                    .into(),
            );
        }
        Ok(Stages(stages))
    }

    /// The stage a ticket starts in when its creation names none.
    pub fn first(&self) -> &str {
        &self.0[0].id
    }

    /// The first closed stage (a pipeline always has one).
    pub fn first_closed(&self) -> &str {
        self.0
            .iter()
            .find(|s| s.closed)
            .map_or(self.first(), |s| &s.id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|s| s.id == id)
    }

    /// Whether `id` is a closed stage; unknown stages are not closed.
    pub fn is_closed(&self, id: &str) -> bool {
        self.0.iter().any(|s| s.id == id && s.closed)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.0.iter().map(|s| s.id.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket {
            id: "T".into(),
            status: "new".into(),
            owner: None,
            subject: None,
            properties: [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string()),
            ]
            .into(),
            conversations: vec!["c1".into()],
            deleted: false,
        }
    }

    #[test]
    fn ticket_changes_name_each_property_and_skip_the_conversations() {
        let before = ticket();
        let mut after = ticket();
        after.status = "closed".into();
        after.properties.remove("b");
        after.properties.insert("c".into(), "3".into());
        after.conversations.push("c2".into());
        let changes = after.changes_from(&before);
        let fields: Vec<&str> = changes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, ["status", "properties.b", "properties.c"]);
        assert_eq!(changes[1].2, Value::Null);
    }

    #[test]
    fn an_unchanged_record_has_no_changes() {
        let c = Conversation::new("c1");
        assert!(c.changes_from(&c.clone()).is_empty());
        assert!(ticket().changes_from(&ticket()).is_empty());
    }
}
