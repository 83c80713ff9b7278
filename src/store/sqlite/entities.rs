//! Conversations, tickets, associations and the blocklist.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension, Row};

use super::{Result, Store};
use crate::domain::state::{Conversation, ConversationStatus, Ticket};
use crate::domain::timer::{Timer, TimerKey, TimerRecord};
use crate::store::StateRead;

/// The columns of a conversation, with its ticket: a macro, so that each
/// query is one literal (not formatted again at each read).
macro_rules! select_conversations {
    ($($rest:literal)?) => {
        concat!(
            "SELECT c.id, c.status, c.owner, a.ticket, c.inbox, c.channel, \
             c.contact, c.subject, c.spam FROM conversations c \
             LEFT JOIN associations a ON a.conversation = c.id"
            $(, " ", $rest)?
        )
    };
}

fn conversation_from(row: &Row) -> rusqlite::Result<Conversation> {
    let status: String = row.get(1)?;
    Ok(Conversation {
        id: row.get(0)?,
        status: ConversationStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(1, status, rusqlite::types::Type::Text)
        })?,
        owner: row.get(2)?,
        ticket: row.get(3)?,
        inbox: row.get(4)?,
        channel: row.get(5)?,
        contact: row.get(6)?,
        subject: row.get(7)?,
        spam: row.get(8)?,
    })
}

fn ticket_from(row: &Row) -> rusqlite::Result<Ticket> {
    let properties: String = row.get(4)?;
    Ok(Ticket {
        id: row.get(0)?,
        status: row.get(1)?,
        owner: row.get(2)?,
        subject: row.get(3)?,
        properties: serde_json::from_str(&properties).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
        })?,
        conversations: Vec::new(),
        deleted: row.get(5)?,
    })
}

impl StateRead for Store {
    fn timer(&self, key: &TimerKey) -> Result<Option<String>> {
        self.read_timer(key)
    }

    fn timers_of(&self, record: TimerRecord, id: &str) -> Result<Vec<Timer>> {
        self.read_timers_of(record, id)
    }

    fn due_timers(&self, until: &str, limit: usize) -> Result<Vec<Timer>> {
        self.read_due_timers(until, limit)
    }

    fn all_timers(&self) -> Result<Vec<Timer>> {
        self.read_all_timers()
    }

    fn next_timer_due(&self) -> Result<Option<String>> {
        self.read_next_timer_due()
    }

    fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        Ok(self
            .conn
            .prepare_cached(select_conversations!("WHERE c.id = ?1"))?
            .query_row([id], conversation_from)
            .optional()?)
    }

    fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        let ticket = self
            .conn
            .prepare_cached(
                "SELECT id, status, owner, subject, properties, deleted FROM tickets WHERE id = ?1",
            )?
            .query_row([id], ticket_from)
            .optional()?;
        let Some(mut ticket) = ticket else {
            return Ok(None);
        };
        ticket.conversations = self
            .conn
            .prepare_cached(
                "SELECT conversation FROM associations WHERE ticket = ?1 ORDER BY rowid",
            )?
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(ticket))
    }

    fn is_blocked(&self, contact: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM blocked_contacts WHERE contact = ?1")?
            .exists([contact])?)
    }

    /// Every conversation, by id.
    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.conn
            .prepare(select_conversations!("ORDER BY c.id"))?
            .query_map([], conversation_from)?
            .collect::<rusqlite::Result<_>>()
            .map_err(Into::into)
    }

    /// Every ticket, by id, with its conversations in association order.
    fn all_tickets(&self) -> Result<Vec<Ticket>> {
        let mut conversations: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT ticket, conversation FROM associations ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        for row in rows {
            let (ticket, conversation) = row?;
            conversations.entry(ticket).or_default().push(conversation);
        }
        let mut tickets: Vec<Ticket> = self
            .conn
            .prepare(
                "SELECT id, status, owner, subject, properties, deleted FROM tickets ORDER BY id",
            )?
            .query_map([], ticket_from)?
            .collect::<rusqlite::Result<_>>()?;
        for ticket in &mut tickets {
            ticket.conversations = conversations.remove(&ticket.id).unwrap_or_default();
        }
        Ok(tickets)
    }

    fn blocked_contacts(&self) -> Result<Vec<String>> {
        self.conn
            .prepare("SELECT contact FROM blocked_contacts ORDER BY contact")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()
            .map_err(Into::into)
    }
}

impl Store {
    /// Writes a conversation's own fields (its ticket is an association).
    pub fn put_conversation(&self, c: &Conversation) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO conversations (id, status, owner, inbox, channel, contact, subject, spam)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET status = ?2, owner = ?3, inbox = ?4,
                     channel = ?5, contact = ?6, subject = ?7, spam = ?8",
            )?
            .execute(params![
                c.id,
                c.status.as_str(),
                c.owner,
                c.inbox,
                c.channel,
                c.contact,
                c.subject,
                c.spam
            ])?;
        Ok(())
    }

    /// Writes a ticket's own fields (its conversations are associations).
    pub fn put_ticket(&self, t: &Ticket) -> Result<()> {
        let properties =
            serde_json::to_string(&t.properties).expect("a string map always serializes");
        self.conn
            .prepare_cached(
                "INSERT INTO tickets (id, status, owner, subject, properties, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET status = ?2, owner = ?3, subject = ?4,
                     properties = ?5, deleted = ?6",
            )?
            .execute(params![
                t.id, t.status, t.owner, t.subject, properties, t.deleted
            ])?;
        Ok(())
    }

    /// Associates a conversation with a ticket for good. Fails if the
    /// conversation already has a ticket (P2).
    pub fn associate(&self, ticket: &str, conversation: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO associations (conversation, ticket) VALUES (?1, ?2)")?
            .execute([conversation, ticket])?;
        Ok(())
    }

    pub fn block(&self, contact: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO blocked_contacts (contact) VALUES (?1)")?
            .execute([contact])?;
        Ok(())
    }
}
