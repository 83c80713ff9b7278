//! A realistic, seedable stream of inbox events: conversations arrive,
//! get tickets, change owners, move through the pipeline (with cascades),
//! and some are trashed, deleted or marked as spam.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use inboxd::domain::event::{Event, EventKind};

/// Conversations that still get events; older ones fall out of the window.
const WINDOW: usize = 5_000;
const AGENTS: usize = 20;
const CONTACTS: usize = 2_000;
const STAGES: [&str; 4] = ["new", "waiting_on_contact", "waiting_on_us", "closed"];

struct Live {
    conversation: String,
    ticket: Option<String>,
}

pub struct Workload {
    rng: Xoshiro256PlusPlus,
    live: Vec<Live>,
    conversations: usize,
    tickets: usize,
    events: usize,
}

impl Workload {
    pub fn new(seed: u64) -> Self {
        Workload {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            live: Vec::new(),
            conversations: 0,
            tickets: 0,
            events: 0,
        }
    }

    /// The next `count` events.
    pub fn take(&mut self, count: usize) -> Vec<Event> {
        (0..count).map(|_| self.next_event()).collect()
    }

    fn next_event(&mut self) -> Event {
        let kind = loop {
            if let Some(kind) = self.next_kind() {
                break kind;
            }
        };
        self.events += 1;
        Event {
            id: format!("b{}", self.events),
            at: None,
            actor: None,
            kind,
        }
    }

    /// One event of a random kind, or `None` if that kind has no target yet.
    fn next_kind(&mut self) -> Option<EventKind> {
        use EventKind::*;
        let roll = self.rng.random_range(0..1000u32);
        if roll < 250 || self.live.is_empty() {
            return Some(self.new_conversation());
        }
        let i = self.rng.random_range(0..self.live.len());
        let conversation = self.live[i].conversation.clone();
        let ticket = self.live[i].ticket.clone();
        let owner = Some(format!("agent{}", self.rng.random_range(0..AGENTS)));
        Some(match roll {
            250..400 => {
                if ticket.is_some() {
                    return None;
                }
                self.tickets += 1;
                let id = format!("t{}", self.tickets);
                self.live[i].ticket = Some(id.clone());
                TicketCreated {
                    ticket: id,
                    conversation,
                    subject: None,
                    owner: None,
                    status: None,
                    properties: Default::default(),
                }
            }
            400..450 => {
                let other = self.live[self.rng.random_range(0..self.live.len())]
                    .ticket
                    .clone();
                match (ticket, other) {
                    (None, Some(other)) => {
                        self.live[i].ticket = Some(other.clone());
                        TicketAssociated {
                            ticket: other,
                            conversation,
                        }
                    }
                    _ => return None,
                }
            }
            450..600 => ConversationOwnerChanged {
                conversation,
                owner,
            },
            600..650 => TicketOwnerChanged {
                ticket: ticket?,
                owner,
            },
            650..850 => TicketStatusChanged {
                ticket: ticket?,
                status: STAGES[self.rng.random_range(0..STAGES.len())].to_string(),
            },
            850..900 => TicketPropertyChanged {
                ticket: ticket?,
                property: "priority".into(),
                value: Some(["low", "normal", "high"][self.rng.random_range(0..3)].into()),
            },
            900..940 if roll % 2 == 0 => ConversationClosed { conversation },
            900..940 => ConversationReopened { conversation },
            940..960 => {
                self.live.swap_remove(i);
                ConversationTrashed { conversation }
            }
            960..970 => {
                self.live.swap_remove(i);
                TicketDeleted { ticket: ticket? }
            }
            970..990 => ConversationMarkedSpam { conversation },
            _ => ConversationSenderBlocked { conversation },
        })
    }

    fn new_conversation(&mut self) -> EventKind {
        self.conversations += 1;
        let conversation = format!("c{}", self.conversations);
        self.live.push(Live {
            conversation: conversation.clone(),
            ticket: None,
        });
        if self.live.len() > WINDOW {
            self.live.remove(0);
        }
        EventKind::ConversationCreated {
            conversation,
            inbox: Some("support".into()),
            channel: Some("email".into()),
            contact: Some(format!(
                "contact{}@example.com",
                self.rng.random_range(0..CONTACTS)
            )),
            subject: Some("Help".into()),
            owner: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let a = Workload::new(3).take(500);
        let b = Workload::new(3).take(500);
        assert_eq!(a, b);
        assert_ne!(a, Workload::new(4).take(500));
    }

    #[test]
    fn the_mix_has_every_kind_of_change() {
        let events = Workload::new(1).take(5_000);
        for t in [
            "conversation.created",
            "ticket.created",
            "ticket.associated",
            "ticket.status_changed",
            "conversation.trashed",
            "ticket.deleted",
        ] {
            assert!(events.iter().any(|e| e.type_name() == t), "no {t}");
        }
    }
}
