//! How an event's changes are kept in the audit table, whatever the
//! backend: one row per record and rule run, its fields as the JSON
//! `[[field, before, after], ...]`.

use serde_json::Value;

use crate::domain::change::Change;

/// The audit rows of `changes`: each row's first change (event, rule,
/// chain, record) and its fields' text.
pub fn rows(changes: &[Change]) -> impl Iterator<Item = (&Change, String)> {
    let same_row = |a: &Change, b: &Change| {
        a.event == b.event && a.entity == b.entity && a.id == b.id && a.rule == b.rule
    };
    changes.chunk_by(same_row).map(|group| {
        // Tuples serialize as JSON arrays: written from the changes in
        // place, without copying their values into a `Value` first.
        let fields: Vec<(&str, &Value, &Value)> = group
            .iter()
            .map(|c| (c.field.as_str(), &c.before, &c.after))
            .collect();
        let text = serde_json::to_string(&fields).expect("JSON values always serialize");
        (&group[0], text)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::change::Entity;
    use serde_json::json;

    fn change(id: &str, field: &str, before: Value, after: Value) -> Change {
        Change::by_e1(Entity::Conversation, id, field, before, after)
    }

    #[test]
    fn a_row_per_record_its_fields_as_json_arrays_read_back_as_written() {
        let changes = [
            change("c1", "status", Value::Null, json!("open")),
            change("c1", "subject", Value::Null, json!("a \"quoted\"\ttab")),
            change("c2", "spam", json!(false), json!(true)),
        ];
        let rows: Vec<(&Change, String)> = rows(&changes).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0.id, "c1");
        assert_eq!(
            rows[0].1,
            r#"[["status",null,"open"],["subject",null,"a \"quoted\"\ttab"]]"#
        );
        assert_eq!(rows[1].1, r#"[["spam",false,true]]"#);
        assert_eq!(
            parse(&rows[0].1),
            vec![
                ("status".to_string(), Value::Null, json!("open")),
                (
                    "subject".to_string(),
                    Value::Null,
                    json!("a \"quoted\"\ttab")
                ),
            ]
        );
    }
}
