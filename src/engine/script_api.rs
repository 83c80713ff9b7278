//! The script API bound to the engine: each function of the manual
//! (`scripting::manual`) registered on the Rhai engine, reading and
//! changing the event's working state.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::domain::event::EventKind;
use crate::domain::timer::{TimerKey, TimerRecord};
use crate::engine::event_work::EventWork;
use crate::scripting::script_log::ScriptLog;

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

/// Registers the inbox API on `engine`, bound to `work`; script output goes
/// to `log`.
pub fn register(engine: &mut Engine, work: &Rc<RefCell<EventWork>>, log: &Rc<ScriptLog>) {
    register_reads(engine, work);
    register_conversation_actions(engine, work);
    register_ticket_actions(engine, work);
    register_timers(engine, work);

    let u = Rc::clone(work);
    engine.register_fn("notify", move |webhook: &str, payload: Map| -> Result<()> {
        let payload: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(payload))?;
        u.borrow_mut()
            .notify(webhook, payload)
            .map_err(|reason| reason.into())
    });
    let u = Rc::clone(work);
    engine.register_fn("reject", move |reason: &str| -> Result<()> {
        Err(u.borrow_mut().reject(reason).into())
    });
    let l = Rc::clone(log);
    engine.register_fn("log", move |message: &str| l.write(message));
    let l = Rc::clone(log);
    engine.on_print(move |text| l.write(text));
    let l = Rc::clone(log);
    engine.on_debug(move |text, _, pos| l.write(&format!("{pos}: {text}")));
}

fn register_reads(engine: &mut Engine, work: &Rc<RefCell<EventWork>>) {
    let u = Rc::clone(work);
    engine.register_fn("conversation", move |id: &str| -> Result<Dynamic> {
        let found = u
            .borrow_mut()
            .working
            .conversation(id)
            .map_err(store_error)?;
        found.map_or(Ok(Dynamic::UNIT), |c| rhai::serde::to_dynamic(&c))
    });
    let u = Rc::clone(work);
    engine.register_fn("ticket", move |id: &str| -> Result<Dynamic> {
        let found = u.borrow_mut().working.ticket(id).map_err(store_error)?;
        found.map_or(Ok(Dynamic::UNIT), |t| rhai::serde::to_dynamic(&t))
    });
    let u = Rc::clone(work);
    engine.register_fn("is_blocked", move |contact: &str| -> Result<bool> {
        u.borrow_mut()
            .working
            .is_blocked(contact)
            .map_err(store_error)
    });
    let u = Rc::clone(work);
    engine.register_fn("stage_is_closed", move |stage: &str| {
        u.borrow().stages.is_closed(stage)
    });
    let u = Rc::clone(work);
    engine.register_fn("first_stage", move || u.borrow().stages.first().to_string());
    let u = Rc::clone(work);
    engine.register_fn("first_closed_stage", move || {
        u.borrow().stages.first_closed().to_string()
    });
}

/// `start_ticket_timer`, `stop_ticket_timer` and their conversation twins.
fn register_timers(engine: &mut Engine, work: &Rc<RefCell<EventWork>>) {
    for (record, start, stop) in [
        (
            TimerRecord::Ticket,
            "start_ticket_timer",
            "stop_ticket_timer",
        ),
        (
            TimerRecord::Conversation,
            "start_conversation_timer",
            "stop_conversation_timer",
        ),
    ] {
        let u = Rc::clone(work);
        engine.register_fn(
            start,
            move |id: &str, name: &str, after: &str| -> Result<bool> {
                let call = format!("{start}({id:?}, {name:?}, {after:?})");
                u.borrow_mut()
                    .start_timer(timer_key(record, id, name), after, call)
                    .map_err(|reason| reason.into())
            },
        );
        let u = Rc::clone(work);
        engine.register_fn(stop, move |id: &str, name: &str| -> Result<bool> {
            let call = format!("{stop}({id:?}, {name:?})");
            u.borrow_mut()
                .stop_timer(timer_key(record, id, name), call)
                .map_err(|reason| reason.into())
        });
    }
}

fn timer_key(record: TimerRecord, id: &str, name: &str) -> TimerKey {
    TimerKey {
        record,
        id: id.to_string(),
        name: name.to_string(),
    }
}

/// Registers `name(id)`: an action on one conversation.
fn conversation_action(
    engine: &mut Engine,
    work: &Rc<RefCell<EventWork>>,
    name: &'static str,
    make: fn(String) -> EventKind,
) {
    let u = Rc::clone(work);
    engine.register_fn(name, move |id: &str| -> Result<bool> {
        act(&u, make(id.to_string()), format!("{name}({id:?})"))
    });
}

fn register_conversation_actions(engine: &mut Engine, work: &Rc<RefCell<EventWork>>) {
    use EventKind::*;
    conversation_action(engine, work, "close_conversation", |conversation| {
        ConversationClosed { conversation }
    });
    conversation_action(engine, work, "reopen_conversation", |conversation| {
        ConversationReopened { conversation }
    });
    conversation_action(engine, work, "trash_conversation", |conversation| {
        ConversationTrashed { conversation }
    });
    conversation_action(engine, work, "mark_spam", |conversation| {
        ConversationMarkedSpam { conversation }
    });
    conversation_action(engine, work, "block_sender", |conversation| {
        ConversationSenderBlocked { conversation }
    });
    let u = Rc::clone(work);
    engine.register_fn(
        "set_conversation_owner",
        move |id: &str, owner: Dynamic| -> Result<bool> {
            let owner = optional_string(owner, "owner")?;
            let call = format!("set_conversation_owner({id:?}, {})", literal(&owner));
            let kind = ConversationOwnerChanged {
                conversation: id.to_string(),
                owner,
            };
            act(&u, kind, call)
        },
    );
}

fn register_ticket_actions(engine: &mut Engine, work: &Rc<RefCell<EventWork>>) {
    use EventKind::*;
    let u = Rc::clone(work);
    engine.register_fn("create_ticket", move |id: &str, conversation: &str| {
        create_ticket(&u, id, conversation, Map::new())
    });
    let u = Rc::clone(work);
    engine.register_fn(
        "create_ticket",
        move |id: &str, conversation: &str, fields: Map| {
            create_ticket(&u, id, conversation, fields)
        },
    );
    let u = Rc::clone(work);
    engine.register_fn(
        "associate_conversation",
        move |ticket: &str, conversation: &str| -> Result<bool> {
            let call = format!("associate_conversation({ticket:?}, {conversation:?})");
            let kind = TicketAssociated {
                ticket: ticket.to_string(),
                conversation: conversation.to_string(),
            };
            act(&u, kind, call)
        },
    );
    let u = Rc::clone(work);
    engine.register_fn(
        "set_ticket_owner",
        move |id: &str, owner: Dynamic| -> Result<bool> {
            let owner = optional_string(owner, "owner")?;
            let call = format!("set_ticket_owner({id:?}, {})", literal(&owner));
            let kind = TicketOwnerChanged {
                ticket: id.to_string(),
                owner,
            };
            act(&u, kind, call)
        },
    );
    let u = Rc::clone(work);
    engine.register_fn(
        "set_ticket_status",
        move |id: &str, status: &str| -> Result<bool> {
            let call = format!("set_ticket_status({id:?}, {status:?})");
            let kind = TicketStatusChanged {
                ticket: id.to_string(),
                status: status.to_string(),
            };
            act(&u, kind, call)
        },
    );
    let u = Rc::clone(work);
    engine.register_fn(
        "set_ticket_property",
        move |id: &str, property: &str, value: Dynamic| -> Result<bool> {
            let value = optional_string(value, "a property value")?;
            let call = format!(
                "set_ticket_property({id:?}, {property:?}, {})",
                literal(&value)
            );
            let kind = TicketPropertyChanged {
                ticket: id.to_string(),
                property: property.to_string(),
                value,
            };
            act(&u, kind, call)
        },
    );
    let u = Rc::clone(work);
    engine.register_fn("delete_ticket", move |id: &str| -> Result<bool> {
        let kind = TicketDeleted {
            ticket: id.to_string(),
        };
        act(&u, kind, format!("delete_ticket({id:?})"))
    });
}

/// `create_ticket(id, conversation, #{subject, owner, status, properties})`.
fn create_ticket(
    work: &RefCell<EventWork>,
    id: &str,
    conversation: &str,
    mut fields: Map,
) -> Result<bool> {
    let mut take = |key: &str| -> Result<Option<String>> {
        optional_string(fields.remove(key).unwrap_or(Dynamic::UNIT), key)
    };
    let subject = take("subject")?;
    let status = take("status")?;
    let owner = take("owner")?;
    let mut properties = BTreeMap::new();
    if let Some(map) = fields.remove("properties") {
        let map = map
            .try_cast::<Map>()
            .ok_or("create_ticket: `properties` must be a map")?;
        for (key, value) in map {
            let value = value.into_string().map_err(|t| {
                let t = crate::scripting::script::plain_types(t);
                format!("create_ticket: property {key} must be a string, not {t}")
            })?;
            properties.insert(key.to_string(), value);
        }
    }
    if let Some(key) = fields.keys().next() {
        return Err(format!(
            "create_ticket: unknown field {key}; known: subject, owner, status, properties"
        )
        .into());
    }
    let call = format!("create_ticket({id:?}, {conversation:?})");
    let kind = EventKind::TicketCreated {
        ticket: id.to_string(),
        conversation: conversation.to_string(),
        subject,
        owner,
        status,
        properties,
    };
    act(work, kind, call)
}

fn act(work: &RefCell<EventWork>, kind: EventKind, call: String) -> Result<bool> {
    work.borrow_mut()
        .act(kind, call)
        .map_err(|reason| reason.into())
}

/// A string, or `()` for none.
fn optional_string(value: Dynamic, what: &str) -> Result<Option<String>> {
    if value.is_unit() {
        return Ok(None);
    }
    value.into_string().map(Some).map_err(|t| {
        let t = crate::scripting::script::plain_types(t);
        format!("{what} must be a string or (), not {t}").into()
    })
}

/// A value as a script would write it: `"text"` or `()`.
fn literal(value: &Option<String>) -> String {
    value
        .as_deref()
        .map_or_else(|| "()".to_string(), |text| format!("{text:?}"))
}

fn store_error(e: crate::store::StoreError) -> Box<EvalAltResult> {
    format!("store error: {e}").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::working::Working;

    fn names(engine: &Engine) -> std::collections::BTreeSet<String> {
        engine
            .gen_fn_signatures(false)
            .iter()
            .filter_map(|s| s.split('(').next().map(str::to_string))
            .collect()
    }

    #[test]
    fn the_manual_lists_what_register_registers() {
        let store = Rc::new(crate::store::Store::open_in_memory().unwrap());
        let work = Rc::new(RefCell::new(EventWork::new(
            Working::new(store),
            crate::domain::state::Stages::default(),
        )));
        let mut engine = Engine::new_raw();
        register(&mut engine, &work, &Rc::new(ScriptLog::default()));
        let listed: std::collections::BTreeSet<String> = crate::scripting::manual::function_names()
            .map(str::to_string)
            .collect();
        assert_eq!(names(&engine), listed);
    }
}
