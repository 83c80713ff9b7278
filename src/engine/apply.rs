//! What each event type does to the state: the primary change of an
//! original event, and the change a rule's action asks for. One function
//! serves both, so a rule can do nothing an event could not.

use crate::domain::event::EventKind;
use crate::domain::state::{Conversation, ConversationStatus, Stages, Ticket};
use crate::domain::timer::{TimerKey, TimerRecord};
use crate::engine::working::{Cause, Working};

/// Who is asking for the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An event from the inbox: any event on a trashed conversation or a
    /// deleted ticket is rejected.
    Original,
    /// A rule's action: trashing what is in the trash, or deleting what is
    /// deleted, is a no-op, so that cascades P9/P10 meet and stop.
    Action,
}

/// Why an event stops before being applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Not valid against the state, or refused by a rule: final.
    Rejected(String),
    /// A script error, a limit, a store error: retryable.
    Failed(String),
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Self {
        Stop::Failed(format!("store error: {e}"))
    }
}

fn reject<T>(reason: String) -> Result<T, Stop> {
    Err(Stop::Rejected(reason))
}

/// Applies one change; returns whether anything changed.
pub fn apply(
    w: &mut Working,
    kind: &EventKind,
    stages: &Stages,
    mode: Mode,
    cause: &Cause,
) -> Result<bool, Stop> {
    use EventKind::*;
    // A rule trashing what is in the trash, or deleting what is deleted, is
    // a no-op, so that the cascades P9/P10 meet and stop.
    let repeat = mode == Mode::Action
        && match kind {
            ConversationTrashed { conversation } => w
                .conversation(conversation)?
                .is_some_and(|c| c.status == ConversationStatus::Trashed),
            TicketDeleted { ticket } => w.ticket(ticket)?.is_some_and(|t| t.deleted),
            _ => false,
        };
    if repeat {
        return Ok(false);
    }
    match kind {
        ConversationCreated {
            conversation,
            inbox,
            channel,
            contact,
            subject,
            owner,
        } => {
            if w.conversation(conversation)?.is_some() {
                return reject(format!("conversation {conversation} already exists"));
            }
            let created = Conversation {
                owner: owner.clone(),
                inbox: inbox.clone(),
                channel: channel.clone(),
                contact: contact.clone(),
                subject: subject.clone(),
                ..Conversation::new(conversation)
            };
            Ok(w.put_conversation(created, cause))
        }
        ConversationSenderBlocked { conversation } => {
            match live_conversation(w, conversation)?.contact {
                Some(contact) => Ok(w.block(&contact, cause)?),
                None => Ok(false),
            }
        }
        ConversationOwnerChanged { conversation, .. }
        | ConversationClosed { conversation }
        | ConversationReopened { conversation }
        | ConversationTrashed { conversation }
        | ConversationMarkedSpam { conversation } => {
            let mut c = live_conversation(w, conversation)?;
            change_conversation(&mut c, kind);
            let changed = w.put_conversation(c, cause);
            if matches!(kind, ConversationTrashed { .. }) {
                // A trashed conversation's timers go with it.
                w.stop_timers_of(TimerRecord::Conversation, conversation, cause)?;
            }
            Ok(changed)
        }
        TimerFired {
            timer,
            ticket,
            conversation,
        } => {
            let (record, id) = match (ticket, conversation) {
                (Some(ticket), None) => (TimerRecord::Ticket, ticket),
                (None, Some(conversation)) => (TimerRecord::Conversation, conversation),
                _ => {
                    return reject(
                        "a timer.fired event names one ticket or one conversation".into(),
                    )
                }
            };
            let key = TimerKey {
                record,
                id: id.clone(),
                name: timer.clone(),
            };
            // The timer's removal is the event's change: its rules always
            // run (even when it is fired again by `retry`, already gone).
            w.stop_timer(&key, cause)?;
            Ok(true)
        }
        TicketCreated {
            ticket,
            conversation,
            subject,
            owner,
            status,
            properties,
        } => {
            if w.ticket(ticket)?.is_some() {
                return reject(format!("ticket {ticket} already exists"));
            }
            let mut c = live_conversation(w, conversation)?;
            if let Some(other) = &c.ticket {
                return reject(format!(
                    "P2: conversation {conversation} already has ticket {other}"
                ));
            }
            let status = match status {
                Some(s) => known_stage(stages, s)?,
                None => stages.first().to_string(),
            };
            let created = Ticket {
                id: ticket.clone(),
                status,
                owner: owner.clone().or_else(|| c.owner.clone()),
                subject: subject.clone(),
                properties: properties.clone(),
                conversations: vec![conversation.clone()],
                deleted: false,
            };
            c.ticket = Some(ticket.clone());
            w.put_ticket(created, cause);
            w.put_conversation(c, cause);
            w.associate(ticket, conversation);
            Ok(true)
        }
        TicketAssociated {
            ticket,
            conversation,
        } => {
            let mut t = live_ticket(w, ticket)?;
            let mut c = live_conversation(w, conversation)?;
            match &c.ticket {
                Some(current) if current == ticket => return Ok(false),
                Some(other) => {
                    return reject(format!(
                        "P2: conversation {conversation} already has ticket {other}"
                    ))
                }
                None => {}
            }
            c.ticket = Some(ticket.clone());
            t.conversations.push(conversation.clone());
            w.put_ticket(t, cause);
            w.put_conversation(c, cause);
            w.associate(ticket, conversation);
            Ok(true)
        }
        TicketOwnerChanged { ticket, .. }
        | TicketStatusChanged { ticket, .. }
        | TicketPropertyChanged { ticket, .. }
        | TicketDeleted { ticket } => {
            let mut t = live_ticket(w, ticket)?;
            change_ticket(&mut t, kind, stages)?;
            let changed = w.put_ticket(t, cause);
            if matches!(kind, TicketDeleted { .. }) {
                // A deleted ticket's timers go with it.
                w.stop_timers_of(TimerRecord::Ticket, ticket, cause)?;
            }
            Ok(changed)
        }
    }
}

/// The conversation an event targets: it must exist and not be trashed.
fn live_conversation(w: &mut Working, id: &str) -> Result<Conversation, Stop> {
    match w.conversation(id)? {
        None => reject(format!("unknown conversation {id}")),
        Some(c) if c.status == ConversationStatus::Trashed => reject(format!(
            "conversation {id} is in the trash and accepts no change"
        )),
        Some(c) => Ok(c),
    }
}

/// The ticket an event targets: it must exist and not be deleted.
fn live_ticket(w: &mut Working, id: &str) -> Result<Ticket, Stop> {
    match w.ticket(id)? {
        None => reject(format!("unknown ticket {id}")),
        Some(t) if t.deleted => reject(format!("ticket {id} is deleted and accepts no change")),
        Some(t) => Ok(t),
    }
}

fn change_conversation(c: &mut Conversation, kind: &EventKind) {
    use ConversationStatus::*;
    match kind {
        EventKind::ConversationOwnerChanged { owner, .. } => c.owner = owner.clone(),
        EventKind::ConversationClosed { .. } if c.status == Open => c.status = Closed,
        EventKind::ConversationReopened { .. } if c.status == Closed => c.status = Open,
        EventKind::ConversationTrashed { .. } => c.status = Trashed,
        EventKind::ConversationMarkedSpam { .. } => c.spam = true,
        _ => {}
    }
}

fn change_ticket(t: &mut Ticket, kind: &EventKind, stages: &Stages) -> Result<(), Stop> {
    match kind {
        EventKind::TicketOwnerChanged { owner, .. } => t.owner = owner.clone(),
        EventKind::TicketStatusChanged { status, .. } => t.status = known_stage(stages, status)?,
        EventKind::TicketPropertyChanged {
            property, value, ..
        } => match value {
            Some(v) => {
                t.properties.insert(property.clone(), v.clone());
            }
            None => {
                t.properties.remove(property);
            }
        },
        EventKind::TicketDeleted { .. } => t.deleted = true,
        _ => {}
    }
    Ok(())
}

/// The pipeline may have changed since the event was enqueued.
fn known_stage(stages: &Stages, status: &str) -> Result<String, Stop> {
    if stages.contains(status) {
        Ok(status.to_string())
    } else {
        reject(format!(
            "unknown status {status:?}: the pipeline's stages are {}",
            stages.ids().join(", ")
        ))
    }
}
