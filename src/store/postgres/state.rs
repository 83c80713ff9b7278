//! The state: conversations, tickets, associations, the blocklist and the
//! timers; and which events are done.

use std::collections::{BTreeMap, HashSet};

use postgres::Row;

use super::PgStore;
use crate::domain::state::{Conversation, ConversationStatus, Ticket};
use crate::domain::timer::{Timer, TimerKey, TimerRecord};
use crate::store::{DoneEvents, Result, StateRead, StateWrites, StoreError, Trouble};

fn damaged(what: String) -> StoreError {
    StoreError::backend(Trouble::Other, what)
}

fn conversation_from(row: &Row) -> Result<Conversation> {
    let status: String = row.get(1);
    Ok(Conversation {
        id: row.get(0),
        status: ConversationStatus::parse(&status)
            .ok_or_else(|| damaged(format!("a conversation has the status {status:?}")))?,
        owner: row.get(2),
        ticket: row.get(3),
        inbox: row.get(4),
        channel: row.get(5),
        contact: row.get(6),
        subject: row.get(7),
        spam: row.get(8),
    })
}

fn ticket_from(row: &Row) -> Result<Ticket> {
    let properties: String = row.get(4);
    Ok(Ticket {
        id: row.get(0),
        status: row.get(1),
        owner: row.get(2),
        subject: row.get(3),
        properties: serde_json::from_str(&properties)
            .map_err(|e| damaged(format!("a ticket's properties are not JSON: {e}")))?,
        conversations: Vec::new(),
        deleted: row.get(5),
    })
}

fn timer_from(row: &Row) -> Result<Timer> {
    let record: String = row.get(0);
    Ok(Timer {
        record: TimerRecord::parse(&record)
            .ok_or_else(|| damaged(format!("a timer is on a {record:?}")))?,
        id: row.get(1),
        name: row.get(2),
        due: row.get(3),
    })
}

impl StateRead for PgStore {
    fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        self.query(
            "SELECT c.id, c.status, c.owner, a.ticket, c.inbox, c.channel, c.contact, c.subject, c.spam
             FROM conversations c LEFT JOIN associations a ON a.conversation = c.id WHERE c.id = $1",
            &[&id],
        )?
        .first()
        .map(conversation_from)
        .transpose()
    }

    fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        // With its conversations, in one round trip.
        let rows = self.query(
            "SELECT id, status, owner, subject, properties, deleted,
                 ARRAY(SELECT conversation FROM associations WHERE ticket = $1 ORDER BY n)
             FROM tickets WHERE id = $1",
            &[&id],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let mut ticket = ticket_from(row)?;
        ticket.conversations = row.get(6);
        Ok(Some(ticket))
    }

    fn is_blocked(&self, contact: &str) -> Result<bool> {
        Ok(!self
            .query(
                "SELECT 1 FROM blocked_contacts WHERE contact = $1",
                &[&contact],
            )?
            .is_empty())
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.query(
            "SELECT c.id, c.status, c.owner, a.ticket, c.inbox, c.channel, c.contact, c.subject, c.spam
             FROM conversations c LEFT JOIN associations a ON a.conversation = c.id ORDER BY c.id",
            &[],
        )?
        .iter()
        .map(conversation_from)
        .collect()
    }

    fn all_tickets(&self) -> Result<Vec<Ticket>> {
        let mut conversations: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in self.query(
            "SELECT ticket, conversation FROM associations ORDER BY n",
            &[],
        )? {
            conversations
                .entry(row.get(0))
                .or_default()
                .push(row.get(1));
        }
        let mut tickets = self
            .query(
                "SELECT id, status, owner, subject, properties, deleted FROM tickets ORDER BY id",
                &[],
            )?
            .iter()
            .map(ticket_from)
            .collect::<Result<Vec<_>>>()?;
        for ticket in &mut tickets {
            ticket.conversations = conversations.remove(&ticket.id).unwrap_or_default();
        }
        Ok(tickets)
    }

    fn blocked_contacts(&self) -> Result<Vec<String>> {
        Ok(self
            .query("SELECT contact FROM blocked_contacts ORDER BY contact", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn timer(&self, key: &TimerKey) -> Result<Option<String>> {
        Ok(self
            .query(
                "SELECT due FROM timers WHERE record = $1 AND id = $2 AND name = $3",
                &[&key.record.as_str(), &key.id, &key.name],
            )?
            .first()
            .map(|r| r.get(0)))
    }

    fn timers_of(&self, record: TimerRecord, id: &str) -> Result<Vec<Timer>> {
        self.query(
            "SELECT record, id, name, due FROM timers WHERE record = $1 AND id = $2 ORDER BY name",
            &[&record.as_str(), &id],
        )?
        .iter()
        .map(timer_from)
        .collect()
    }

    fn due_timers(&self, until: &str, limit: usize) -> Result<Vec<Timer>> {
        self.query(
            "SELECT record, id, name, due FROM timers WHERE due <= $1
             ORDER BY due, record, id, name LIMIT $2",
            &[&until, &(limit as i64)],
        )?
        .iter()
        .map(timer_from)
        .collect()
    }

    fn all_timers(&self) -> Result<Vec<Timer>> {
        self.query(
            "SELECT record, id, name, due FROM timers ORDER BY due, record, id, name",
            &[],
        )?
        .iter()
        .map(timer_from)
        .collect()
    }

    fn next_timer_due(&self) -> Result<Option<String>> {
        Ok(self.query_one("SELECT min(due) FROM timers", &[])?.get(0))
    }
}

impl DoneEvents for PgStore {
    fn is_done(&self, event_id: &str) -> Result<bool> {
        Ok(!self
            .query(
                "SELECT 1 FROM processed WHERE event_id = $1 AND outcome IN ('applied', 'rejected') LIMIT 1",
                &[&event_id],
            )?
            .is_empty())
    }

    fn done_among(&self, ids: &[&str]) -> Result<HashSet<String>> {
        Ok(self
            .query(
                "SELECT DISTINCT event_id FROM processed
                 WHERE event_id = ANY($1) AND outcome IN ('applied', 'rejected')",
                &[&ids],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}

impl PgStore {
    /// The state rows, without the savepoint `write_state` takes (the
    /// benchmark's ceiling writes them bare).
    pub fn write_rows(&self, writes: &StateWrites) -> Result<()> {
        for c in &writes.conversations {
            self.execute(
                "INSERT INTO conversations (id, status, owner, inbox, channel, contact, subject, spam)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET status = $2, owner = $3, inbox = $4,
                     channel = $5, contact = $6, subject = $7, spam = $8",
                &[
                    &c.id,
                    &c.status.as_str(),
                    &c.owner,
                    &c.inbox,
                    &c.channel,
                    &c.contact,
                    &c.subject,
                    &c.spam,
                ],
            )?;
        }
        for t in &writes.tickets {
            let properties =
                serde_json::to_string(&t.properties).expect("a string map always serializes");
            self.execute(
                "INSERT INTO tickets (id, status, owner, subject, properties, deleted)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET status = $2, owner = $3, subject = $4,
                     properties = $5, deleted = $6",
                &[
                    &t.id,
                    &t.status,
                    &t.owner,
                    &t.subject,
                    &properties,
                    &t.deleted,
                ],
            )?;
        }
        for (ticket, conversation) in writes.associations {
            self.execute(
                "INSERT INTO associations (conversation, ticket) VALUES ($1, $2)",
                &[conversation, ticket],
            )?;
        }
        for contact in writes.blocks {
            self.execute(
                "INSERT INTO blocked_contacts (contact) VALUES ($1) ON CONFLICT DO NOTHING",
                &[contact],
            )?;
        }
        for t in &writes.timers_set {
            self.execute(
                "INSERT INTO timers (record, id, name, due) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (record, id, name) DO UPDATE SET due = $4",
                &[&t.record.as_str(), &t.id, &t.name, &t.due],
            )?;
        }
        for key in &writes.timers_removed {
            self.execute(
                "DELETE FROM timers WHERE record = $1 AND id = $2 AND name = $3",
                &[&key.record.as_str(), &key.id, &key.name],
            )?;
        }
        Ok(())
    }
}
