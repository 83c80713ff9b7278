//! The script API as the admin reads it: every function a rule can call,
//! what it returns or the event it derives. The README's tables are made
//! from it (a test keeps them equal); `validate` knows these names; a test
//! keeps it equal to what `engine::script_api::register` registers.
//!
//! Every action is the same change as the event of the same type, applied
//! at once: later code and later rules see it. An action returns `true` if
//! it changed something (and so derived an event), `false` if it was a no-op.

/// What a function of the API is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads the state.
    Read,
    /// Changes it, deriving an event.
    Action,
    /// Anything else.
    Other,
}

/// One function of the API, as the manual shows it.
pub struct Entry {
    pub call: &'static str,
    pub kind: Kind,
    /// What it returns (reads), the event it derives (actions), or what it
    /// does.
    pub doc: &'static str,
}

/// The script API, function by function.
pub const MANUAL: &[Entry] = &[
    Entry {
        call: "conversation(id)",
        kind: Kind::Read,
        doc: "a map (`id`, `status`, `owner`, `ticket`, `inbox`, `channel`, `contact`, `subject`, `spam`) or `()`",
    },
    Entry {
        call: "ticket(id)",
        kind: Kind::Read,
        doc: "a map (`id`, `status`, `owner`, `subject`, `properties`, `conversations`, `deleted`) or `()`",
    },
    Entry {
        call: "is_blocked(contact)",
        kind: Kind::Read,
        doc: "whether the contact is on the blocklist",
    },
    Entry {
        call: "stage_is_closed(stage)",
        kind: Kind::Read,
        doc: "whether the stage is a closed one",
    },
    Entry {
        call: "first_stage()",
        kind: Kind::Read,
        doc: "the stage new tickets start in",
    },
    Entry {
        call: "first_closed_stage()",
        kind: Kind::Read,
        doc: "the first closed stage of the pipeline",
    },
    Entry {
        call: "close_conversation(id)",
        kind: Kind::Action,
        doc: "`conversation.closed`",
    },
    Entry {
        call: "reopen_conversation(id)",
        kind: Kind::Action,
        doc: "`conversation.reopened`",
    },
    Entry {
        call: "trash_conversation(id)",
        kind: Kind::Action,
        doc: "`conversation.trashed`",
    },
    Entry {
        call: "mark_spam(id)",
        kind: Kind::Action,
        doc: "`conversation.marked_spam`",
    },
    Entry {
        call: "block_sender(id)",
        kind: Kind::Action,
        doc: "`conversation.sender_blocked`",
    },
    Entry {
        call: "set_conversation_owner(id, owner)",
        kind: Kind::Action,
        doc: "`conversation.owner_changed` (`owner` a string or `()`)",
    },
    Entry {
        call: "create_ticket(id, conversation)",
        kind: Kind::Action,
        doc: "`ticket.created`",
    },
    Entry {
        call: "create_ticket(id, conversation, #{subject, owner, status, properties})",
        kind: Kind::Action,
        doc: "`ticket.created`, with those fields (each optional)",
    },
    Entry {
        call: "associate_conversation(ticket, conversation)",
        kind: Kind::Action,
        doc: "`ticket.associated`",
    },
    Entry {
        call: "set_ticket_owner(id, owner)",
        kind: Kind::Action,
        doc: "`ticket.owner_changed` (`owner` a string or `()`)",
    },
    Entry {
        call: "set_ticket_status(id, status)",
        kind: Kind::Action,
        doc: "`ticket.status_changed`",
    },
    Entry {
        call: "set_ticket_property(id, name, value)",
        kind: Kind::Action,
        doc: "`ticket.property_changed` (`value` `()` clears)",
    },
    Entry {
        call: "delete_ticket(id)",
        kind: Kind::Action,
        doc: "`ticket.deleted`",
    },
    Entry {
        call: "reject(reason)",
        kind: Kind::Other,
        doc: "refuses the whole event with that reason (even if the script catches the error)",
    },
    Entry {
        call: "start_ticket_timer(ticket, name, after)",
        kind: Kind::Other,
        doc: "(re)starts timer `name` on the ticket, due `after` from the event's `at` (`\"30s\"`, `\"90m\"`, `\"36h\"`, `\"7d\"`, or an RFC 3339 time); when due it fires `timer.fired`; `true` if it changed",
    },
    Entry {
        call: "start_conversation_timer(conversation, name, after)",
        kind: Kind::Other,
        doc: "the same on a conversation",
    },
    Entry {
        call: "stop_ticket_timer(ticket, name)",
        kind: Kind::Other,
        doc: "removes the ticket's timer `name`; `false` if there was none",
    },
    Entry {
        call: "stop_conversation_timer(conversation, name)",
        kind: Kind::Other,
        doc: "the same on a conversation",
    },
    Entry {
        call: "notify(webhook, payload)",
        kind: Kind::Other,
        doc: "sends `payload` (a map) to the `[[webhook]]` of that name if the event is applied (recorded with it, shown in `dry-run` and the change feed); an unknown name fails the event, and `validate` reports it",
    },
    Entry {
        call: "log(message)",
        kind: Kind::Other,
        doc: "writes an info line to the daemon's log, naming the rule and the event (as `print` does)",
    },
];

/// The names of the API's functions (`validate` knows them).
pub fn function_names() -> impl Iterator<Item = &'static str> {
    MANUAL
        .iter()
        .map(|entry| entry.call.split('(').next().unwrap_or(entry.call))
}

/// The manual's table of one kind of function, in Markdown, as the
/// README shows it.
pub fn manual_table(kind: Kind) -> String {
    let header = match kind {
        Kind::Read => "| function | returns |\n|----------|---------|\n",
        Kind::Action => "| action | event it derives |\n|--------|------------------|\n",
        Kind::Other => "| function | does |\n|----------|------|\n",
    };
    let rows: String = MANUAL
        .iter()
        .filter(|entry| entry.kind == kind)
        .map(|entry| format!("| `{}` | {} |\n", entry.call, entry.doc))
        .collect();
    format!("{header}{rows}")
}
