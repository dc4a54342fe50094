//! Producers: who wrote an event. Every stream entry may name its producer in a `producer`
//! field; the HTTP intake, the connectors and `pulse import` always write it, so a caller
//! cannot claim to be someone else (the field is not part of the event it sends). An entry
//! without one was written straight to the stream by the operator's own code: `stream`.
//!
//! A post id belongs to the producer that first stored it. Another producer's deletion or
//! engagement of it is refused unless the trust setting lets that producer act for the owner
//! (the PostgreSQL function `may_act` applies it, in the same statement that stores a batch).

use std::collections::BTreeMap;

/// The stream entry field that names the producer.
pub const PRODUCER_FIELD: &str = "producer";
/// The producer of an entry that names none.
pub const STREAM: &str = "stream";
/// The HTTP intake of a server without authentication: one producer for every caller.
pub const OPEN_HTTP: &str = "http";
/// `pulse import`.
pub const IMPORT: &str = "import";
/// Longest producer name, in bytes.
pub const MAX_PRODUCER_BYTES: usize = 200;

/// The producer of events sent with the ingest key `key_id`.
pub fn key(key_id: &str) -> String {
    format!("key:{key_id}")
}

/// The producer of the connector `name`.
pub fn source(name: &str) -> String {
    format!("source:{name}")
}

/// The natural key of an engagement: the producer's id (in the producer's own space, so one
/// producer cannot take another's ids; entries written straight to the stream keep the bare
/// id they always had), else the stream entry it came from.
pub fn engagement_key(stream: &str, producer: &str, id: Option<&str>, entry_id: &str) -> String {
    match id {
        Some(id) if producer == STREAM => format!("id:{id}"),
        Some(id) => format!("id:{producer}/{id}"),
        None => format!("entry:{stream}/{entry_id}"),
    }
}

/// Whether `name` may name a producer: not empty, at most [`MAX_PRODUCER_BYTES`], printable,
/// without `=` (which separates the pairs of the trust setting).
pub fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PRODUCER_BYTES
        && !name.contains('=')
        && !super::printable::has_unshowable(name)
}

/// Which producers may act for which others' posts: `ingest.producer_trust` maps a producer
/// to the owners it may delete and engage for (`*`: every owner).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    pairs: Vec<String>,
}

impl Trust {
    /// The trust of `setting`.
    pub fn new(setting: &BTreeMap<String, Vec<String>>) -> Trust {
        let pairs = setting
            .iter()
            .flat_map(|(actor, owners)| owners.iter().map(move |o| format!("{actor}={o}")))
            .collect();
        Trust { pairs }
    }

    /// The `actor=owner` pairs `may_act` reads.
    pub fn pairs(&self) -> &[String] {
        &self.pairs
    }

    /// Whether `actor` may delete or engage with what `owner` produced (the same rule as the
    /// SQL function `may_act`, for checks outside the database).
    pub fn may_act(&self, actor: &str, owner: &str) -> bool {
        actor == owner
            || self
                .pairs
                .iter()
                .any(|p| p.split_once('=') == Some((actor, owner)) || *p == format!("{actor}=*"))
    }
}

/// The default trust: entries written straight to the stream are the operator's own and may
/// act for every producer.
pub fn default_trust() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([(STREAM.to_string(), vec!["*".to_string()])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_acts_for_itself_and_for_whom_it_is_trusted() {
        let trust = Trust::new(&BTreeMap::from([
            ("stream".to_string(), vec!["*".to_string()]),
            (
                "source:bsky".to_string(),
                vec!["source:bsky-backfill".to_string()],
            ),
        ]));
        assert!(trust.may_act("key:a", "key:a"));
        assert!(!trust.may_act("key:b", "key:a"));
        assert!(trust.may_act("stream", "key:a"));
        assert!(trust.may_act("source:bsky", "source:bsky-backfill"));
        assert!(!trust.may_act("source:bsky-backfill", "source:bsky"));
    }

    #[test]
    fn names_that_would_break_the_trust_pairs_are_invalid() {
        assert!(valid("key:k_1"));
        assert!(!valid(""));
        assert!(!valid("a=b"));
        assert!(!valid("a\nb"));
        assert!(!valid(&"x".repeat(MAX_PRODUCER_BYTES + 1)));
    }
}
