//! People's labels on posts, as the API takes and returns them (docs/review.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::event::MAX_LABEL_BYTES;
use super::named::named_enum;
use super::SentimentLabel;

named_enum! {
    /// What a label says something about.
    LabelKind {
        /// Whether the post is about a topic (`related`, `unrelated`); needs `topic_id`.
        Relevance = "relevance",
        /// The post's sentiment (`negative`, `neutral`, `positive`).
        Sentiment = "sentiment",
        /// Whether the post is spam or a bot's (`spam`, `bot`, `not_spam`).
        Spam = "spam",
        /// A tag (1 to 100 bytes of text).
        Tag = "tag",
        /// A note (1 to 2,000 bytes of text).
        Note = "note",
    }
}

/// Longest note, in bytes.
pub const MAX_NOTE_BYTES: usize = 2_000;

impl LabelKind {
    /// Why `value` is not a label of this kind, if it is not.
    pub fn value_problem(self, value: &str) -> Option<String> {
        let one_of = |allowed: &[&str]| {
            (!allowed.contains(&value)).then(|| {
                format!(
                    "a {} label's value is one of: {}",
                    self.as_str(),
                    allowed.join(", ")
                )
            })
        };
        match self {
            LabelKind::Relevance => one_of(&["related", "unrelated"]),
            LabelKind::Sentiment => SentimentLabel::parse(value)
                .is_none()
                .then(|| "a sentiment label's value is negative, neutral or positive".into()),
            LabelKind::Spam => one_of(&["spam", "bot", "not_spam"]),
            LabelKind::Tag => text_problem(value, MAX_LABEL_BYTES, "a tag"),
            LabelKind::Note => text_problem(value, MAX_NOTE_BYTES, "a note"),
        }
    }
}

/// Why `value` is not free text of at most `max` bytes: blank, too long, or holding control,
/// zero-width or direction-changing characters that would make it read as something else.
fn text_problem(value: &str, max: usize, what: &str) -> Option<String> {
    if value.trim().is_empty() || value.len() > max {
        return Some(format!("{what} is 1 to {max} bytes, not blank"));
    }
    let hidden = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2028}' | '\u{2029}'
                | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    value
        .chars()
        .any(hidden)
        .then(|| format!("{what} may not hold control, zero-width or direction characters"))
}

/// A label as stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Label {
    pub id: i64,
    pub post_id: String,
    /// The topic of a `relevance` label; null for the other kinds.
    pub topic_id: Option<i64>,
    pub kind: LabelKind,
    pub value: String,
    /// Who gave it: `key:<id>` of the API key, `cli:<user>`, or the network on an open server.
    pub reviewer: String,
    pub created_at: DateTime<Utc>,
    /// When and by whom it was undone; an undone label is kept and no longer counts.
    pub undone_at: Option<DateTime<Utc>>,
    pub undone_by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_takes_only_its_values() {
        assert!(LabelKind::Relevance.value_problem("related").is_none());
        assert!(LabelKind::Relevance.value_problem("positive").is_some());
        assert!(LabelKind::Sentiment.value_problem("neutral").is_none());
        assert!(LabelKind::Sentiment.value_problem("Neutral").is_some());
        assert!(LabelKind::Spam.value_problem("bot").is_none());
        assert!(LabelKind::Tag.value_problem("pricing").is_none());
        for bad in ["", "  ", "a\u{202E}b", "zero\u{200B}width", "nul\0"] {
            assert!(LabelKind::Tag.value_problem(bad).is_some(), "{bad:?}");
        }
        assert!(LabelKind::Tag
            .value_problem(&"x".repeat(MAX_LABEL_BYTES + 1))
            .is_some());
        assert!(LabelKind::Note
            .value_problem("two lines\nof a note")
            .is_none());
    }
}
