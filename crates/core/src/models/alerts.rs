//! Alert rules and the alerts they raise. Kinds, severities and statuses are enums end to end:
//! the API refuses any other value, the database stores their names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bounded::AtMost;
use super::metrics::Dimension;

use super::named::named_enum;

named_enum! {
    /// What a rule watches for.
    RuleKind {
        /// Negative share of the window at or above `threshold`.
        Negativity = "negativity",
        /// Share of high-churn posts at or above `threshold`.
        Churn = "churn",
        /// Posts in the window above the baseline mean + `k` standard deviations.
        VolumeSpike = "volume_spike",
        /// Mean sentiment below the baseline mean - `k` standard deviations.
        SentimentDip = "sentiment_dip",
        /// Mean toxicity at or above `threshold`.
        Toxicity = "toxicity",
        /// A story born in the window with at least `min_volume` posts.
        NewStory = "new_story",
        /// A story with at least `threshold` posts written in the window.
        StorySurge = "story_surge",
    }
}

named_enum! {
    /// How urgent a rule's alerts are.
    Severity {
        Info = "info",
        Warning = "warning",
        Critical = "critical",
    }
}

named_enum! {
    /// Where an alert stands.
    AlertStatus {
        Firing = "firing",
        Acknowledged = "acknowledged",
        Resolved = "resolved",
    }
}

impl Severity {
    /// Rank of urgency: info 0, warning 1, critical 2.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Info => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
        }
    }
}

impl RuleKind {
    /// Whether the rule compares the window with a baseline of earlier windows.
    pub fn uses_baseline(self) -> bool {
        matches!(self, RuleKind::VolumeSpike | RuleKind::SentimentDip)
    }

    /// Whether the rule watches stories (one alert per story) rather than a dimension's figures.
    pub fn watches_stories(self) -> bool {
        matches!(self, RuleKind::NewStory | RuleKind::StorySurge)
    }

    /// The WebSocket message type of this kind's alerts.
    pub fn event_type(self) -> String {
        let suffix = match self {
            RuleKind::VolumeSpike => "spike",
            other => other.as_str(),
        };
        format!("alert:{suffix}")
    }
}

/// A stored alert rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertRule {
    pub id: i64,
    pub name: String,
    pub kind: RuleKind,
    pub dimension: Dimension,
    /// The key watched; null watches every key of the dimension.
    pub key: Option<String>,
    pub window_minutes: i32,
    pub threshold: f64,
    pub min_volume: i64,
    pub baseline_minutes: i32,
    pub k: f64,
    pub min_baseline_points: i32,
    pub severity: Severity,
    pub cooldown_secs: i32,
    pub enabled: bool,
    /// The channels (webhook subscriptions) its alerts go to; null: every channel.
    pub channels: Option<Vec<i64>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AlertRule {
    /// The WebSocket message type of this rule's alerts.
    pub fn event_type(&self) -> String {
        self.kind.event_type()
    }
}

/// An alert a rule raised.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    pub id: i64,
    /// The rule that raised it; null once the rule is deleted.
    pub rule_id: Option<i64>,
    pub rule_name: String,
    pub kind: RuleKind,
    pub severity: Severity,
    pub dimension: Dimension,
    /// The key within the dimension (empty for `overall`).
    pub key: String,
    pub status: AlertStatus,
    /// The figure that crossed the threshold.
    pub value: f64,
    pub threshold: f64,
    /// What the rule saw when it fired (figures depend on the kind).
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    pub fired_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A rule as clients write it; on update every field is optional. On create `name` and
/// `kind` are required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// 1 to 200 bytes, not blank, without control, zero-width or direction-changing characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    pub kind: Option<RuleKind>,
    /// Default `overall`.
    pub dimension: Option<Dimension>,
    /// The key watched within the dimension; null watches every key.
    #[serde(default, deserialize_with = "given")]
    pub key: Option<Option<String>>,
    /// 1 to 1440 (default 5).
    #[schema(minimum = 1, maximum = 1440)]
    pub window_minutes: Option<i32>,
    /// A finite number (default 0.5).
    pub threshold: Option<f64>,
    /// At least 0 (default 20).
    #[schema(minimum = 0)]
    pub min_volume: Option<i64>,
    /// 1 to 10080 (default 60).
    #[schema(minimum = 1, maximum = 10080)]
    pub baseline_minutes: Option<i32>,
    /// A finite number, at least 0 (default 3).
    #[schema(minimum = 0.0)]
    pub k: Option<f64>,
    /// At least 1 (default 6).
    #[schema(minimum = 1)]
    pub min_baseline_points: Option<i32>,
    /// Default `warning`.
    pub severity: Option<Severity>,
    /// At least 0 (default 900).
    #[schema(minimum = 0)]
    pub cooldown_secs: Option<i32>,
    pub enabled: Option<bool>,
    /// Ids of the channels (webhook subscriptions) to notify, at most 50; null (or absent on
    /// create): every channel.
    #[serde(default, deserialize_with = "rule_channels")]
    pub channels: Option<Option<Vec<i64>>>,
}

/// Longest text of a post an alert's evidence quotes, in characters, as many as a topic's
/// scored texts keep (`SCORED_TEXT_CHARS`); a longer one is cut, its last character an
/// ellipsis. A post may hold 20,000 bytes and an alert quotes five: whole, the 500 alerts of a
/// page of the list held 2,500 of them, 50 MB as read and up to 300 MB as JSON (a control
/// character is written as a 6-byte `\u0001`). Cut, a quoted text is at most 4,000 bytes
/// stored and 6,000 as JSON. A webhook quotes less of each still (`POST_CHARS`).
pub const EVIDENCE_TEXT_CHARS: usize = 1_000;

/// `text` as an alert's evidence quotes it: whole when at most [`EVIDENCE_TEXT_CHARS`]
/// characters, else its opening with an ellipsis as the last of them.
pub fn quoted_text(text: &str) -> String {
    // One character past the bound tells a cut text from a whole one.
    let mut quoted = super::text::prefix_chars(text, EVIDENCE_TEXT_CHARS + 1).to_string();
    super::text::ellipsize_chars(&mut quoted, EVIDENCE_TEXT_CHARS);
    quoted
}

/// Channels one rule may name.
pub const MAX_RULE_CHANNELS: usize = 50;

/// A field present in the body, null included: `Some(None)` for null, which an update writes
/// (serde alone reads null into `Option<Option<_>>` as `None`, the same as absent, and the
/// update left the field as it was); absent is `None` through `#[serde(default)]`.
fn given<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A rule's channels as [`given`] reads them, holding at most one id past
/// [`MAX_RULE_CHANNELS`] ([`super::bounded::at_most`]).
fn rule_channels<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<i64>>>, D::Error> {
    let channels = given::<D, AtMost<i64, MAX_RULE_CHANNELS>>(d)?;
    Ok(channels.map(|c| c.map(AtMost::into_inner)))
}

impl RuleInput {
    /// Checks every given field (the database checks them again); the error says which field
    /// is wrong and why.
    pub fn check(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.len() > 200 {
                return Err("name must be 1 to 200 bytes".into());
            }
        }
        for (field, value) in [
            ("name", self.name.as_deref()),
            ("key", self.key.as_ref().and_then(|k| k.as_deref())),
        ] {
            // A name or key is logged, shown in every channel and stored; a line break or an
            // escape sequence in it could forge log lines or rewrite a terminal, and no label
            // an event carries has one, so no key with one could ever match.
            if value.is_some_and(super::printable::has_unshowable) {
                return Err(format!(
                    "{field} must not contain control characters (line breaks, tabs, NUL, \
                     escapes) or zero-width or direction-changing ones"
                ));
            }
        }
        if self
            .window_minutes
            .is_some_and(|w| !(1..=1440).contains(&w))
        {
            return Err("window_minutes must be between 1 and 1440".into());
        }
        if self
            .baseline_minutes
            .is_some_and(|w| !(1..=10080).contains(&w))
        {
            return Err("baseline_minutes must be between 1 and 10080".into());
        }
        if self.min_volume.is_some_and(|v| v < 0)
            || self.cooldown_secs.is_some_and(|v| v < 0)
            || self.min_baseline_points.is_some_and(|v| v < 1)
        {
            return Err("min_volume and cooldown_secs must be ≥ 0, min_baseline_points ≥ 1".into());
        }
        if let Some(Some(key)) = &self.key {
            if key.is_empty() || key.len() > super::event::MAX_LABEL_BYTES {
                return Err(format!(
                    "key must be 1 to {} bytes, or null for every value of the dimension",
                    super::event::MAX_LABEL_BYTES
                ));
            }
        }
        if let (Some(super::metrics::Dimension::Topic), Some(Some(key))) =
            (self.dimension, &self.key)
        {
            if !key.parse::<i64>().is_ok_and(|id| id > 0) {
                return Err("key of the dimension `topic` is a topic's id".into());
            }
        }
        if let Some(Some(channels)) = &self.channels {
            if channels.len() > MAX_RULE_CHANNELS {
                return Err(format!(
                    "channels must be at most {MAX_RULE_CHANNELS} channel ids"
                ));
            }
            if channels.iter().any(|&id| id < 1) {
                return Err("channel ids are positive".into());
            }
        }
        if self.threshold.is_some_and(|t| !t.is_finite())
            || self.k.is_some_and(|k| !k.is_finite() || k < 0.0)
        {
            return Err("threshold must be finite and k a non-negative number".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_quotes_at_most_its_bound_of_a_post_and_marks_the_cut() {
        let whole = "Awful support, I hate it";
        assert_eq!(quoted_text(whole), whole);
        let exact = "é".repeat(EVIDENCE_TEXT_CHARS);
        assert_eq!(quoted_text(&exact), exact);
        // The worst post: 20,000 bytes of a control character JSON writes in six.
        let worst = "\u{1}".repeat(crate::models::event::MAX_TEXT_BYTES);
        let quoted = quoted_text(&worst);
        assert_eq!(quoted.chars().count(), EVIDENCE_TEXT_CHARS);
        assert!(quoted.ends_with('…'));
        assert!(worst.starts_with(quoted.trim_end_matches('…')));
        let json = serde_json::to_string(&quoted).unwrap();
        assert!(json.len() <= 6 * EVIDENCE_TEXT_CHARS + 2, "{}", json.len());
    }

    #[test]
    fn a_key_names_a_value_and_channel_ids_are_positive() {
        let input = |body: serde_json::Value| serde_json::from_value::<RuleInput>(body).unwrap();
        let empty = input(serde_json::json!({"dimension": "product", "key": ""}));
        assert!(empty.check().unwrap_err().starts_with("key must be"));
        let long = input(serde_json::json!({"key": "p".repeat(1000)}));
        assert!(long.check().is_err());
        assert!(input(serde_json::json!({"key": "pulse-phone"}))
            .check()
            .is_ok());
        assert!(input(serde_json::json!({"key": null})).check().is_ok());
        let negative = input(serde_json::json!({"channels": [-1]}));
        assert_eq!(negative.check().unwrap_err(), "channel ids are positive");
    }

    /// `"channels": null` and `"key": null` were read as absent, so a PATCH meant to send a
    /// rule's alerts to every channel again, or to watch every key, left it as it was.
    #[test]
    fn null_is_given_and_absent_is_not() {
        let input = |body: serde_json::Value| serde_json::from_value::<RuleInput>(body).unwrap();
        let absent = input(serde_json::json!({}));
        assert_eq!((absent.channels, absent.key), (None, None));
        let null = input(serde_json::json!({"channels": null, "key": null}));
        assert_eq!((null.channels, null.key), (Some(None), Some(None)));
        let listed = input(serde_json::json!({"channels": [3, 4], "key": "pulse-phone"}));
        assert_eq!(listed.channels, Some(Some(vec![3, 4])));
        assert_eq!(listed.key, Some(Some("pulse-phone".into())));
    }

    #[test]
    fn names_and_keys_refuse_control_characters() {
        let input = |body: serde_json::Value| serde_json::from_value::<RuleInput>(body).unwrap();
        for name in [
            "Churn\nINFO pulse: all clear",
            "tab\there",
            "\u{1b}[2Jwiped",
            "nul\0",
        ] {
            let named = input(serde_json::json!({"name": name}));
            assert!(
                named
                    .check()
                    .unwrap_err()
                    .starts_with("name must not contain control"),
                "{name:?}"
            );
        }
        let keyed = input(serde_json::json!({"key": "pulse\rphone"}));
        assert!(keyed
            .check()
            .unwrap_err()
            .starts_with("key must not contain control"));
        assert!(
            input(serde_json::json!({"name": "Négativité ≥ 50 % — Pulse"}))
                .check()
                .is_ok()
        );
    }

    #[test]
    fn kinds_name_their_event_types() {
        assert_eq!(RuleKind::VolumeSpike.event_type(), "alert:spike");
        assert_eq!(RuleKind::Churn.event_type(), "alert:churn");
    }
}
