//! People's labels on posts, as the API takes and returns them (docs/review.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::event::MAX_LABEL_BYTES;
use super::named::named_enum;
use super::printable;
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
            LabelKind::Tag => text_problem(value, MAX_LABEL_BYTES, "a tag", false),
            LabelKind::Note => text_problem(value, MAX_NOTE_BYTES, "a note", true),
        }
    }
}

/// Why `value` is not free text of at most `max` bytes: blank, too long, or holding a control
/// character or one that is not seen or reorders the text around it
/// ([`printable::hides_or_reorders`], the check every name and filter value passes), so a tag
/// cannot pass for another ("pricing" and "pricing" with a word joiner) nor a note show other
/// than it reads. A note (`lines`) may hold new lines and tabs; a tag is one line.
fn text_problem(value: &str, max: usize, what: &str, lines: bool) -> Option<String> {
    if value.trim().is_empty() || value.len() > max {
        return Some(format!("{what} is 1 to {max} bytes, not blank"));
    }
    let unshowable = if lines {
        value
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || printable::hides_or_reorders(c))
    } else {
        printable::has_unshowable(value)
    };
    unshowable.then(|| {
        format!("{what} may not hold control, invisible, zero-width or direction characters")
    })
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
        assert!(LabelKind::Note.value_problem("a\tb").is_none());
        assert!(LabelKind::Tag.value_problem("two\nlines").is_some());
    }

    #[test]
    fn tags_and_notes_hold_nothing_unseen_or_reordering() {
        // Each reads as "pricing" (or as nothing) and is another tag.
        for hidden in [
            "\u{2060}",
            "\u{061C}",
            "\u{00AD}",
            "\u{180E}",
            "\u{3164}",
            "\u{E0041}",
        ] {
            let tag = format!("pricing{hidden}");
            assert!(LabelKind::Tag.value_problem(&tag).is_some(), "{tag:?}");
            assert!(LabelKind::Tag.value_problem(hidden).is_some(), "{hidden:?}");
            let note = format!("a note\n{tag}");
            assert!(LabelKind::Note.value_problem(&note).is_some(), "{note:?}");
        }
    }
}
