//! Stream replies as fred hands them over (RESP2 arrays or RESP3 maps, text or binary
//! values) turned into entries.

use fred::types::Value;

use super::entry::{Cut, RawEntry, ENTRY_BYTES_FIELD, ENTRY_FIELDS_FIELD};

/// Parses an XREADGROUP reply: `[[stream, [[id, [field, value, ...]], ...]]]` or nil.
pub fn parse_read_reply(value: Value) -> Vec<RawEntry> {
    let Value::Array(streams) = value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            continue;
        };
        if parts.len() < 2 {
            continue;
        }
        if let Value::Array(entries) = parts.swap_remove(1) {
            out.extend(entries.into_iter().filter_map(parse_entry));
        }
    }
    out
}

/// Parses an XAUTOCLAIM reply: `[next_cursor, [[id, fields], ...], [deleted ids]]`.
pub fn parse_claim_reply(value: Value) -> (String, Vec<RawEntry>) {
    let Value::Array(mut parts) = value else {
        return (String::new(), Vec::new());
    };
    if parts.len() < 2 {
        return (String::new(), Vec::new());
    }
    let entries = match parts.swap_remove(1) {
        Value::Array(entries) => entries.into_iter().filter_map(parse_entry).collect(),
        _ => Vec::new(),
    };
    let next = as_string(&parts[0]).unwrap_or_default();
    (next, entries)
}

fn parse_entry(value: Value) -> Option<RawEntry> {
    let Value::Array(mut parts) = value else {
        return None;
    };
    if parts.len() < 2 {
        return None;
    }
    let fields_value = parts.swap_remove(1);
    let id = as_string(&parts[0])?;
    let mut fields = match fields_value {
        Value::Array(flat) => {
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(name), Some(value)) = (it.next(), it.next()) {
                fields.push((as_string(&name).unwrap_or_default(), as_bytes(value)));
            }
            fields
        }
        Value::Map(map) => map
            .inner()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.as_str().map(|s| s.to_string()).unwrap_or_default(),
                    as_bytes(v),
                )
            })
            .collect(),
        // A pending entry whose data was trimmed away: nothing left to process, but it must
        // still be acknowledged, so it travels on with no fields and is dead-lettered.
        _ => Vec::new(),
    };
    Some(RawEntry {
        id,
        cut: take_cut_marks(&mut fields),
        fields,
        deliveries: 1,
        seen_at_ms: None,
    })
}

/// A bounded read's marks of an entry it cut (see `streams::bounded`), taken off its fields.
fn take_cut_marks(fields: &mut Vec<(String, Vec<u8>)>) -> Option<Cut> {
    let n = fields.len();
    if n < 2 || fields[n - 2].0 != ENTRY_BYTES_FIELD || fields[n - 1].0 != ENTRY_FIELDS_FIELD {
        return None;
    }
    let number = |value: &[u8]| {
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let cut = Cut {
        bytes: number(&fields[n - 2].1),
        fields: number(&fields[n - 1].1),
    };
    fields.truncate(n - 2);
    Some(cut)
}

pub(crate) fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn as_bytes(value: Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.into_inner().to_vec(),
        Value::Bytes(b) => b.to_vec(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Double(d) => d.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn parses_read_replies_including_binary_and_trimmed_entries() {
        let reply = Value::Array(vec![Value::Array(vec![
            s("pulse:events"),
            Value::Array(vec![
                Value::Array(vec![
                    s("1-0"),
                    Value::Array(vec![s("event"), Value::Bytes(vec![0xff, 0x00].into())]),
                ]),
                Value::Array(vec![s("2-0"), Value::Null]),
            ]),
        ])]);
        let entries = parse_read_reply(reply);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].event_bytes(), Some(&[0xff, 0x00][..]));
        assert_eq!(entries[0].added_at_ms(), Some(1));
        assert!(entries[1].fields.is_empty());
        assert!(parse_read_reply(Value::Null).is_empty());
    }

    #[test]
    fn a_cut_entry_carries_its_measures_not_its_marks() {
        let reply = Value::Array(vec![Value::Array(vec![
            s("pulse:events"),
            Value::Array(vec![Value::Array(vec![
                s("1-0"),
                Value::Array(vec![
                    s("f0"),
                    s("x"),
                    s(ENTRY_BYTES_FIELD),
                    s("3900000"),
                    s(ENTRY_FIELDS_FIELD),
                    s("500001"),
                ]),
            ])]),
        ])]);
        let entries = parse_read_reply(reply);
        assert_eq!(
            entries[0].cut,
            Some(Cut {
                bytes: 3_900_000,
                fields: 500_001
            })
        );
        assert_eq!(entries[0].fields, vec![("f0".to_string(), b"x".to_vec())]);
        // A producer's own field of that name, alone, is not a mark.
        let own = Value::Array(vec![Value::Array(vec![
            s("pulse:events"),
            Value::Array(vec![Value::Array(vec![
                s("2-0"),
                Value::Array(vec![s(ENTRY_BYTES_FIELD), s("1")]),
            ])]),
        ])]);
        assert_eq!(parse_read_reply(own)[0].cut, None);
    }

    #[test]
    fn parses_claim_replies() {
        let reply = Value::Array(vec![
            s("5-0"),
            Value::Array(vec![Value::Array(vec![
                s("3-1"),
                Value::Array(vec![s("event"), s("{}")]),
            ])]),
            Value::Array(vec![]),
        ]);
        let (next, entries) = parse_claim_reply(reply);
        assert_eq!(next, "5-0");
        assert_eq!(entries[0].id, "3-1");
    }
}
