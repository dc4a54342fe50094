//! A stream entry as read through the consumer group, before it is decoded.

use crate::models::{Event, EventError};

/// The field a bounded read adds to an entry it cut: its size in bytes (see
/// [`crate::streams::bounded`]).
pub const ENTRY_BYTES_FIELD: &str = "__pulse_entry_bytes";
/// The field a bounded read adds to an entry it cut, after [`ENTRY_BYTES_FIELD`]: its number
/// of fields.
pub const ENTRY_FIELDS_FIELD: &str = "__pulse_entry_fields";

/// What a bounded read measured of an entry over `ingest.max_entry_bytes` or
/// `ingest.max_entry_fields`, which it returned as a truncated copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The entry's field names and values together, in bytes.
    pub bytes: u64,
    /// Its fields (name and value pairs).
    pub fields: u64,
}

/// One stream entry as read from Redis, before decoding.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// The stream entry id (`<ms>-<seq>`), also the acknowledgement handle.
    pub id: String,
    /// The entry's fields as the producer wrote them, kept verbatim for dead-lettering.
    pub fields: Vec<(String, Vec<u8>)>,
    /// How many times the group has delivered this entry (1 on first read).
    pub deliveries: u64,
    /// The entry's real size and field count when it was over `ingest.max_entry_bytes` or
    /// `ingest.max_entry_fields`: it was read as a truncated copy (see
    /// [`crate::streams::bounded`]) and goes to the dead letters.
    pub cut: Option<Cut>,
    /// For an entry whose id is ahead of the clock, when this process first saw its stream
    /// hold it (Unix ms, this process's clock): what its age is counted from instead (see
    /// [`crate::streams::future_ids`]).
    pub seen_at_ms: Option<i64>,
}

impl RawEntry {
    /// The producer's `event` field, if present.
    pub fn event_bytes(&self) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(name, _)| name == "event")
            .map(|(_, value)| value.as_slice())
    }

    /// Decodes and validates the entry's event: the one path from a stream entry to an
    /// [`Event`] or the reason it is dead-lettered. Public so the fuzz targets exercise exactly
    /// what the analyzer workers run.
    pub fn decode(&self) -> Result<Event, EventError> {
        match self.event_bytes() {
            Some(bytes) => Event::from_slice(bytes),
            None => Err(EventError::MissingEventField),
        }
    }

    /// The producer the entry names (see [`crate::models::producer`]), `stream` when it
    /// names none.
    pub fn producer(&self) -> Result<String, EventError> {
        use crate::models::producer;
        let Some((_, value)) = self
            .fields
            .iter()
            .find(|(name, _)| name == producer::PRODUCER_FIELD)
        else {
            return Ok(producer::STREAM.to_string());
        };
        match std::str::from_utf8(value) {
            Ok(name) if producer::valid(name) => Ok(name.to_string()),
            _ => Err(EventError::Invalid {
                field: "producer",
                reason: format!(
                    "the entry's producer field must be 1 to {} bytes of printable UTF-8 \
                     without '='",
                    producer::MAX_PRODUCER_BYTES
                ),
            }),
        }
    }

    /// XADD time in Unix milliseconds, read off the entry id.
    pub fn added_at_ms(&self) -> Option<i64> {
        self.id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
    }

    /// When the entry arrived, in Unix milliseconds, what its age is counted from: its XADD
    /// time, or when its id is ahead of the clock, when it was first seen.
    pub fn arrived_at_ms(&self) -> Option<i64> {
        self.seen_at_ms.or_else(|| self.added_at_ms())
    }
}

/// Bytes of an entry's field names and values.
pub fn entry_bytes(entry: &RawEntry) -> usize {
    entry.fields.iter().map(|(k, v)| k.len() + v.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &[u8])]) -> RawEntry {
        RawEntry {
            id: "1-0".into(),
            fields: fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_vec()))
                .collect(),
            deliveries: 1,
            cut: None,
            seen_at_ms: None,
        }
    }

    #[test]
    fn decodes_the_first_event_field_or_names_why_not() {
        let engagement =
            br#"{"type":"engagement","post_id":"p1","kind":"like","at":"2026-01-01T00:00:00Z"}"#;
        let ok = entry(&[("source", b"x"), ("event", engagement), ("event", b"{}")]);
        assert!(matches!(ok.decode(), Ok(Event::Engagement(_))));
        let missing = entry(&[("payload", engagement)]);
        assert_eq!(missing.decode().unwrap_err(), EventError::MissingEventField);
        let binary = entry(&[("event", &[0xff, 0x00])]);
        assert_eq!(binary.decode().unwrap_err(), EventError::InvalidUtf8);
    }
}
