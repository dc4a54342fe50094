//! Fuzzes the path from a Redis stream entry to an event or a dead-letter reason.
//!
//! Input layout (the seeds in `fuzz/corpus/stream_event` follow it):
//!
//! - byte 0, mode (`% 4`): 0 feeds the rest to `Event::from_slice` as raw bytes (the producer's
//!   `event` value alone), and as the body of `POST /api/v1/events` to the HTTP intake's
//!   splitter; 1, 2 and 3 build a whole Redis reply around an entry and run it
//!   through the ingester's parsers, then `RawEntry::decode` (what the analyzer workers run):
//!   1 an XREADGROUP reply with the fields as a flat RESP2 array, 2 the same with the fields as
//!   a RESP3 map, 3 an XAUTOCLAIM reply.
//! - byte 1, shape flags (entry modes only): bit 0 sends the id as bytes rather than a string,
//!   bit 1 sends field values as bytes rather than strings, bit 2 sends field names as bytes.
//! - the rest, split on `\n`: the entry id, then field name, field value, name, value, ...
//!
//! Properties checked on every input: nothing panics; every entry with an id comes out of the
//! reply parser with its fields verbatim (they are dead-lettered as read); an error always has
//! a known class and a non-empty reason; an accepted event is valid, and re-encoding it and
//! decoding it again gives the same event; the HTTP intake hands the decoder the event's text
//! exactly as sent, so it accepts and refuses what the stream does.
#![no_main]

use fred::prelude::Value;
use libfuzzer_sys::fuzz_target;
use pulse::actors::ingester::{parse_claim_reply, parse_read_reply};
use pulse::actors::messages::RawEntry;
use pulse::http::api::events::split_events;
use pulse::models::event::MAX_EVENT_BYTES;
use pulse::models::{Event, EventError};
use serde::de::IgnoredAny;

const CLASSES: [&str; 5] = [
    "missing_event_field",
    "invalid_utf8",
    "too_large",
    "malformed",
    "invalid_field",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => raw_event(rest),
        entry_mode => {
            let Some((&flags, rest)) = rest.split_first() else {
                return;
            };
            stream_entry(entry_mode, flags, rest);
        }
    }
});

/// The `event` value on its own, as a stream field and as an HTTP request body.
fn raw_event(bytes: &[u8]) {
    let decoded = Event::from_slice(bytes);
    check_outcome(&decoded);

    match split_events(bytes) {
        Ok(items) => {
            for item in &items {
                assert!(!item.get().is_empty());
                check_outcome(&Event::from_slice(item.get().as_bytes()));
            }
            if bytes.trim_ascii_start().starts_with(b"{") {
                // A single event: the intake decodes exactly the text sent.
                assert_eq!(items.len(), 1);
                let text = items[0].get().as_bytes();
                assert_eq!(text, bytes.trim_ascii());
                match (&decoded, &Event::from_slice(text)) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b),
                    // Only surrounding whitespace differs, which counts towards the size limit.
                    (Err(EventError::TooLarge(_)), _) => {}
                    (Err(a), Err(b)) => assert_eq!(a.class(), b.class(), "`{a}` vs `{b}`"),
                    (a, b) => panic!("stream says {a:?}, http says {b:?}"),
                }
            }
        }
        Err(e) => {
            // JSON text is UTF-8 (serde_json skips over the bytes of an ignored string).
            let is_json = std::str::from_utf8(bytes)
                .is_ok_and(|text| serde_json::from_str::<IgnoredAny>(text).is_ok());
            match e.code {
                "invalid_json" => assert!(!is_json, "JSON refused: {}", e.message),
                "invalid_event" => assert!(is_json, "not JSON yet judged: {}", e.message),
                other => panic!("unexpected code {other}"),
            }
        }
    }
}

/// A whole reply holding one entry, through the reply parser and the entry decoder.
fn stream_entry(mode: u8, flags: u8, rest: &[u8]) {
    let mut parts = rest.split(|&b| b == b'\n');
    let id_bytes = parts.next().unwrap_or_default();
    let flat_parts: Vec<&[u8]> = parts.collect();
    let pairs: Vec<(&[u8], &[u8])> = flat_parts.chunks_exact(2).map(|c| (c[0], c[1])).collect();
    // A name without a value: Redis never sends one, the parser must still cope.
    let dangling = flat_parts.chunks_exact(2).remainder().first().copied();
    let id_as_bytes = flags & 1 != 0;
    let values_as_bytes = flags & 2 != 0;
    let names_as_bytes = flags & 4 != 0;

    // A stream entry id is ASCII; a string value must be UTF-8 to be built at all.
    let id = match (id_as_bytes, std::str::from_utf8(id_bytes)) {
        (false, Ok(s)) => Value::String(s.to_string().into()),
        _ => Value::Bytes(id_bytes.to_vec().into()),
    };
    let expected_id = String::from_utf8_lossy(id_bytes).into_owned();
    let scalar = |bytes: &[u8], as_bytes: bool| match (as_bytes, std::str::from_utf8(bytes)) {
        (false, Ok(s)) => Value::String(s.to_string().into()),
        _ => Value::Bytes(bytes.to_vec().into()),
    };

    let fields = if mode == 2 {
        let map: fred::types::Map = pairs
            .iter()
            .map(|(name, value)| {
                let key = fred::types::Key::from(name.to_vec().into_boxed_slice());
                (key, scalar(value, values_as_bytes))
            })
            .collect();
        Value::Map(map)
    } else {
        let mut flat = Vec::with_capacity(pairs.len() * 2);
        for (name, value) in &pairs {
            flat.push(scalar(name, names_as_bytes));
            flat.push(scalar(value, values_as_bytes));
        }
        if let Some(name) = dangling {
            flat.push(scalar(name, names_as_bytes));
        }
        Value::Array(flat)
    };
    let entry = Value::Array(vec![id, fields]);

    let entries = if mode == 3 {
        let reply = Value::Array(vec![
            Value::String("0-0".into()),
            Value::Array(vec![entry]),
            Value::Array(vec![]),
        ]);
        let (next, entries) = parse_claim_reply(reply);
        assert_eq!(next, "0-0");
        entries
    } else {
        let reply = Value::Array(vec![Value::Array(vec![
            Value::String("pulse:events".into()),
            Value::Array(vec![entry]),
        ])]);
        parse_read_reply(reply)
    };

    // An entry that is read must come out, or it is never acknowledged nor dead-lettered.
    assert_eq!(
        entries.len(),
        1,
        "the entry was dropped by the reply parser"
    );
    let raw = &entries[0];
    assert_eq!(raw.id, expected_id);
    assert_eq!(raw.deliveries, 1);

    if mode == 2 {
        // A map keeps one value per name (the last one written, as Redis does).
        let distinct: std::collections::HashSet<&[u8]> = pairs.iter().map(|p| p.0).collect();
        assert_eq!(raw.fields.len(), distinct.len());
    } else {
        // Dead letters carry the fields as read: same order, same bytes.
        assert_eq!(raw.fields.len(), pairs.len());
        for ((name, value), (got_name, got_value)) in pairs.iter().zip(&raw.fields) {
            assert_eq!(got_name, &String::from_utf8_lossy(name));
            assert_eq!(got_value.as_slice(), *value);
        }
    }

    let decoded = raw.decode();
    check_outcome(&decoded);
    match raw.fields.iter().find(|(name, _)| name == "event") {
        None => assert_eq!(decoded, Err(EventError::MissingEventField)),
        Some((_, value)) => {
            assert_ne!(decoded, Err(EventError::MissingEventField));
            assert_eq!(decoded, Event::from_slice(value));
        }
    }
    check_entry_helpers(raw);
}

/// What every verdict must satisfy, wherever it came from.
fn check_outcome(outcome: &Result<Event, EventError>) {
    match outcome {
        Ok(event) => {
            assert_eq!(event.validate(), Ok(()));
            // What serde writes for an event reads back as the same event (producers built on
            // these types rely on it). Only an input close to the size limit can come back
            // larger than the limit (`"metrics":{}` is written with its four zeros).
            let encoded = serde_json::to_vec(event).expect("an event serializes");
            let again = Event::from_slice(&encoded);
            if encoded.len() <= MAX_EVENT_BYTES {
                assert_eq!(
                    again.as_ref(),
                    Ok(event),
                    "re-encoded as {}",
                    String::from_utf8_lossy(&encoded)
                );
            } else {
                assert_eq!(again, Err(EventError::TooLarge(encoded.len())));
            }
        }
        Err(e) => {
            assert!(CLASSES.contains(&e.class()), "unknown class {}", e.class());
            let reason = e.to_string();
            assert!(!reason.trim().is_empty());
            match e {
                EventError::Malformed(why) => assert!(!why.trim().is_empty()),
                EventError::Invalid { field, reason } => {
                    assert!(!field.is_empty() && !reason.trim().is_empty())
                }
                EventError::TooLarge(n) => assert!(*n > MAX_EVENT_BYTES),
                EventError::MissingEventField | EventError::InvalidUtf8 => {}
            }
        }
    }
}

/// The other readers of an entry the pipeline relies on.
fn check_entry_helpers(raw: &RawEntry) {
    if let Some(ms) = raw.added_at_ms() {
        let (head, _) = raw
            .id
            .split_once('-')
            .expect("a time comes from `<ms>-<seq>`");
        assert_eq!(head.parse::<i64>().ok(), Some(ms));
    }
}
