//! Keyset cursors: what the last item of a page was, hex-encoded so callers treat it as
//! opaque, and read back only when every part of it is something the store could hold.

use chrono::{DateTime, Utc};

/// Longest cursor accepted, in characters (a post id of 256 bytes with the rest fits twice).
const MAX_CHARS: usize = 1_024;

/// `raw` as a cursor.
pub fn encode(raw: &str) -> String {
    crate::models::hex::hex(raw.as_bytes())
}

/// The text a cursor encodes; `None` for anything [`encode`] did not write.
pub fn decode(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > MAX_CHARS {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A cursor's time (microseconds since the epoch), within the years a post may carry.
pub fn time(micros: &str) -> Option<DateTime<Utc>> {
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    let years = crate::models::time::MIN_YEAR..=crate::models::time::MAX_YEAR;
    years.contains(&chrono::Datelike::year(&at)).then_some(at)
}
