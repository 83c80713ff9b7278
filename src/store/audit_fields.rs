//! How an event's changes are kept in the audit table, whatever the
//! backend: one row per record and rule run, its fields as the JSON
//! `[[field, before, after], ...]`.

use serde_json::{json, Value};

use crate::domain::change::Change;

/// The audit rows of `changes`: each row's first change (event, rule,
/// chain, record) and its fields' text.
pub fn rows(changes: &[Change]) -> impl Iterator<Item = (&Change, String)> {
    let same_row = |a: &Change, b: &Change| {
        a.event == b.event && a.entity == b.entity && a.id == b.id && a.rule == b.rule
    };
    changes.chunk_by(same_row).map(|group| {
        let fields: Vec<Value> = group
            .iter()
            .map(|c| json!([c.field, c.before, c.after]))
            .collect();
        (&group[0], Value::Array(fields).to_string())
    })
}

/// One change per field of each audit row, with the row's `processed`.
pub fn expand(rows: Vec<(i64, Change, String)>) -> Vec<(i64, Change)> {
    let mut out = Vec::new();
    for (processed, change, fields) in rows {
        for (field, before, after) in parse(&fields) {
            out.push((
                processed,
                Change {
                    field,
                    before,
                    after,
                    ..change.clone()
                },
            ));
        }
    }
    out
}

/// One `AuditRow` per field of an audit row (`row` without its field).
pub fn per_field(row: crate::store::AuditRow, fields: &str) -> Vec<crate::store::AuditRow> {
    parse(fields)
        .into_iter()
        .map(|(field, before, after)| crate::store::AuditRow {
            field,
            before,
            after,
            ..row.clone()
        })
        .collect()
}

/// `[[field, before, after], ...]`, as `rows` writes it.
pub fn parse(text: &str) -> Vec<(String, Value, Value)> {
    let Ok(Value::Array(items)) = serde_json::from_str(text) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match item {
            Value::Array(mut parts) if parts.len() == 3 => {
                let after = parts.pop()?;
                let before = parts.pop()?;
                let field = parts.pop()?.as_str()?.to_string();
                Some((field, before, after))
            }
            _ => None,
        })
        .collect()
}
