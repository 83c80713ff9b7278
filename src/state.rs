//! The domain model: conversations, tickets and the ticket pipeline's stages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// One stage of the ticket pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub id: String,
    #[serde(default)]
    pub closed: bool,
}

/// The ticket pipeline: its stages, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages(Vec<Stage>);

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
        Ok(Stages(stages))
    }

    /// The stage a ticket starts in when its creation names none.
    pub fn first(&self) -> &str {
        &self.0[0].id
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
