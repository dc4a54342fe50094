//! Keyset cursors: what the last item of a page was, hex-encoded so callers treat it as
//! opaque, and read back only when every part of it is something the store could hold; and
//! the key a listing gives for its next page.

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

/// Cuts `rows`, read as one more than a page of `limit` holds, to the page: the key of its last
/// item when a row was left over (another page follows), else `None`.
pub fn trim_to_page<T, K>(rows: &mut Vec<T>, limit: i64, key: impl FnOnce(&T) -> K) -> Option<K> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if more {
        rows.last().map(key)
    } else {
        None
    }
}

/// The key of the last of `items` when they fill a page of `limit` (the next page may be
/// empty), else `None`: a page not full is the last.
pub fn after_full_page<T, K>(items: &[T], limit: i64, key: impl FnOnce(&T) -> K) -> Option<K> {
    (items.len() as i64 == limit)
        .then(|| items.last().map(key))
        .flatten()
}
