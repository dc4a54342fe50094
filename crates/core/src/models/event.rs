//! The one event format producers write to the stream (and to `POST /api/v1/events`).
//!
//! Parsing and validation live here so every entry point (Redis stream, HTTP) rejects the
//! same inputs with the same reasons.

use super::named::named_enum;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest post text accepted, in bytes. Longer texts are refused, not truncated, so a producer
/// learns about it instead of silently losing content.
pub const MAX_TEXT_BYTES: usize = 20_000;
/// Longest identifier (post id, author id, parent id) accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest short label (city, country, product, channel, lang) accepted, in bytes.
pub const MAX_LABEL_BYTES: usize = 128;
/// Longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2_048;
/// Largest `count` of one engagement, on every path (stream, HTTP, import, `/score`): no
/// single event may stand for more, so one forged event cannot swamp a post's figures.
pub const MAX_ENGAGEMENT_COUNT: u32 = 1_000_000;
/// Largest encoded event accepted, in bytes; bounds the work a single entry can cause.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// How far a timestamp may lie ahead of the moment the event reaches Pulse: producers' clocks
/// drift a little, but a post from the future would sit at the top of every live window.
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);
/// The earliest timestamp accepted (the Unix epoch): nothing on social media predates it,
/// and far-off years are typos or attacks on date handling.
pub const EARLIEST_TIMESTAMP: DateTime<Utc> = DateTime::UNIX_EPOCH;
/// A post created longer than this before it reached Pulse is backfill: stored, analysed and
/// counted in the minutes it belongs to, but never pushed to subscribers as a live post.
pub const BACKFILL_AFTER: TimeDelta = TimeDelta::hours(1);

/// A stream event: either a new post or an engagement with an existing one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Event {
    /// A social post to analyse and store.
    Post(Post),
    /// A like, share, comment or view of a post.
    Engagement(Engagement),
    /// The platform deleted a post: it is marked, left out of listings and of the metrics.
    Delete(Deletion),
}

/// The schema of an event: each variant is its struct's object with the `type` tag among its
/// properties, as serde reads it. (A derived schema would combine the struct with the tag in
/// an `allOf`, which the structs' `additionalProperties: false` makes unsatisfiable.)
impl utoipa::PartialSchema for Event {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
        use utoipa::openapi::RefOr;
        fn tagged(tag: &str, description: &str, variant: RefOr<Schema>) -> Schema {
            let RefOr::T(Schema::Object(mut object)) = variant else {
                panic!("the schema of the `{tag}` variant is not an object");
            };
            object.properties.insert(
                "type".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([tag]))
                    .into(),
            );
            object.required.insert(0, "type".into());
            object.description = Some(description.into());
            Schema::Object(object)
        }
        OneOfBuilder::new()
            .item(tagged(
                "post",
                "A social post to analyse and store.",
                <Post as utoipa::PartialSchema>::schema(),
            ))
            .item(tagged(
                "engagement",
                "A like, share, comment or view of a post.",
                <Engagement as utoipa::PartialSchema>::schema(),
            ))
            .item(tagged(
                "delete",
                "The platform deleted a post.",
                <Deletion as utoipa::PartialSchema>::schema(),
            ))
            .description(Some(
                "A stream event, told apart by `type`: a new post, an engagement with one, or a post's deletion.",
            ))
            .into()
    }
}

impl ToSchema for Event {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Post as ToSchema>::schemas(schemas);
        <Engagement as ToSchema>::schemas(schemas);
        <Deletion as ToSchema>::schemas(schemas);
    }
}

named_enum! {
    /// The social networks Pulse knows by name; anything else is `other`.
    Platform {
        Twitter = "twitter",
        Reddit = "reddit",
        Instagram = "instagram",
        Tiktok = "tiktok",
        Youtube = "youtube",
        Bluesky = "bluesky",
        Mastodon = "mastodon",
        Other = "other",
    }
}

/// Who wrote a post; followers drive reach and virality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Author {
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    pub followers: u64,
}

/// Where a post was written, when the producer knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Geo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// Engagement counts as the platform reported them when the post was captured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMetrics {
    #[serde(default)]
    pub likes: u64,
    #[serde(default)]
    pub shares: u64,
    #[serde(default)]
    pub comments: u64,
    #[serde(default)]
    pub views: u64,
}

/// A social post as producers send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Post {
    /// The producer's post id (1 to 256 bytes).
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    pub platform: Platform,
    pub author: Author,
    /// The text to analyse: not blank, at most 20,000 bytes.
    #[schema(min_length = 1, max_length = 20000)]
    pub text: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<Geo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<PostMetrics>,
}

/// What kind of engagement happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EngagementKind {
    Like,
    Share,
    Comment,
    View,
}

impl EngagementKind {
    /// Every kind, for generators and aggregation.
    pub const ALL: [EngagementKind; 4] = [
        EngagementKind::Like,
        EngagementKind::Share,
        EngagementKind::Comment,
        EngagementKind::View,
    ];

    /// The lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EngagementKind::Like => "like",
            EngagementKind::Share => "share",
            EngagementKind::Comment => "comment",
            EngagementKind::View => "view",
        }
    }
}

/// An engagement with a post. Cascades are rebuilt from `via` (the share it came through).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Engagement {
    /// Optional producer-side id; when absent the stream entry id is the natural key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256)]
    pub id: Option<String>,
    #[schema(min_length = 1, max_length = 256)]
    pub post_id: String,
    pub kind: EngagementKind,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_followers: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// How many engagements this one stands for (1 to 1,000,000; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub count: Option<u32>,
}

/// A post the platform deleted. It may arrive before the post (replays, backfills): the post is
/// then stored already deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    #[schema(min_length = 1, max_length = 256)]
    pub post_id: String,
    /// When it was deleted.
    pub at: DateTime<Utc>,
}

/// Why an event was refused; the reason travels to the dead-letter stream or the HTTP error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("entry has no `event` field")]
    MissingEventField,
    #[error("event is not valid UTF-8")]
    InvalidUtf8,
    #[error("event is {0} bytes, larger than the {MAX_EVENT_BYTES} byte limit")]
    TooLarge(usize),
    #[error("event is not valid: {0}")]
    Malformed(String),
    #[error("field `{field}` is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl EventError {
    /// A low-cardinality class for metric labels and dead-letter entries.
    pub fn class(&self) -> &'static str {
        match self {
            EventError::MissingEventField => "missing_event_field",
            EventError::InvalidUtf8 => "invalid_utf8",
            EventError::TooLarge(_) => "too_large",
            EventError::Malformed(_) => "malformed",
            EventError::Invalid { .. } => "invalid_field",
        }
    }
}

impl Event {
    /// Decodes and validates one event from raw bytes (a stream field or an HTTP body element),
    /// as it reaches Pulse now. A decision only ever turns from refused to accepted as time
    /// passes (timestamps are bounded ahead of the present), so an event accepted over HTTP is
    /// accepted again when the ingester reads it, and a redelivered entry is never refused
    /// after it was once accepted.
    pub fn from_slice(bytes: &[u8]) -> Result<Event, EventError> {
        Self::from_slice_at(bytes, Utc::now())
    }

    /// [`Event::from_slice`] for an event that reached Pulse at `received`.
    pub fn from_slice_at(bytes: &[u8], received: DateTime<Utc>) -> Result<Event, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| EventError::InvalidUtf8)?;
        let event: Event =
            serde_json::from_str(text).map_err(|e| EventError::Malformed(e.to_string()))?;
        event.validate_at(received)?;
        Ok(event)
    }

    /// Checks the limits and invariants serde cannot express, for an event received now.
    pub fn validate(&self) -> Result<(), EventError> {
        self.validate_at(Utc::now())
    }

    /// [`Event::validate`] for an event that reached Pulse at `received`.
    pub fn validate_at(&self, received: DateTime<Utc>) -> Result<(), EventError> {
        match self {
            Event::Post(p) => {
                p.validate()?;
                check_time("created_at", p.created_at, received)
            }
            Event::Engagement(e) => {
                e.validate()?;
                check_time("at", e.at, received)
            }
            Event::Delete(d) => {
                check_id("post_id", &d.post_id)?;
                check_time("at", d.at, received)
            }
        }
    }
}

/// A timestamp no earlier than [`EARLIEST_TIMESTAMP`] and at most [`MAX_FUTURE_SKEW`] ahead of
/// `received`.
fn check_time(
    field: &'static str,
    at: DateTime<Utc>,
    received: DateTime<Utc>,
) -> Result<(), EventError> {
    if at < EARLIEST_TIMESTAMP {
        return Err(invalid(field, "is before 1970-01-01T00:00:00Z"));
    }
    if at > received + MAX_FUTURE_SKEW {
        return Err(invalid(
            field,
            format!(
                "is more than {} minutes in the future",
                MAX_FUTURE_SKEW.num_minutes()
            ),
        ));
    }
    Ok(())
}

impl Post {
    fn validate(&self) -> Result<(), EventError> {
        check_id("id", &self.id)?;
        check_id("author.id", &self.author.id)?;
        check_text("text", &self.text, MAX_TEXT_BYTES, true)?;
        if self.text.trim().is_empty() {
            return Err(invalid("text", "must not be empty"));
        }
        check_followers("author.followers", Some(self.author.followers))?;
        for (field, value, max) in [
            ("lang", &self.lang, MAX_LABEL_BYTES),
            ("product", &self.product, MAX_LABEL_BYTES),
            ("channel", &self.channel, MAX_LABEL_BYTES),
            ("parent_id", &self.parent_id, MAX_ID_BYTES),
            ("url", &self.url, MAX_URL_BYTES),
        ] {
            if let Some(v) = value {
                check_text(field, v, max, false)?;
            }
        }
        if let Some(geo) = &self.geo {
            for (field, value) in [("geo.city", &geo.city), ("geo.country", &geo.country)] {
                if let Some(v) = value {
                    check_text(field, v, MAX_LABEL_BYTES, false)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the post reached Pulse at `received` so long after it was created that it is
    /// backfill rather than live (see [`BACKFILL_AFTER`]).
    pub fn is_backfill(&self, received: DateTime<Utc>) -> bool {
        received - self.created_at > BACKFILL_AFTER
    }

    /// The post's city, when known.
    pub fn city(&self) -> Option<&str> {
        self.geo.as_ref().and_then(|g| g.city.as_deref())
    }

    /// The post's country, when known.
    pub fn country(&self) -> Option<&str> {
        self.geo.as_ref().and_then(|g| g.country.as_deref())
    }
}

impl Engagement {
    fn validate(&self) -> Result<(), EventError> {
        check_id("post_id", &self.post_id)?;
        if let Some(id) = &self.id {
            check_id("id", id)?;
        }
        if let Some(count) = self.count {
            if count == 0 || count > MAX_ENGAGEMENT_COUNT {
                return Err(invalid(
                    "count",
                    format!("must be between 1 and {MAX_ENGAGEMENT_COUNT}"),
                ));
            }
        }
        if let Some(via) = &self.via {
            check_id("via", via)?;
        }
        check_followers("actor_followers", self.actor_followers)?;
        Ok(())
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> EventError {
    EventError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Followers past the store's integer were kept as its largest, silently another number.
fn check_followers(field: &'static str, value: Option<u64>) -> Result<(), EventError> {
    match value {
        Some(n) if n > i64::MAX as u64 => {
            Err(invalid(field, format!("must be at most {}", i64::MAX)))
        }
        _ => Ok(()),
    }
}

fn check_id(field: &'static str, value: &str) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    check_text(field, value, MAX_ID_BYTES, false)
}

/// PostgreSQL text cannot hold NUL, and control characters in labels are always a producer bug;
/// unseen and direction-changing ones let one label pass for another.
fn check_text(
    field: &'static str,
    value: &str,
    max_bytes: usize,
    allow_whitespace_controls: bool,
) -> Result<(), EventError> {
    if value.len() > max_bytes {
        return Err(invalid(
            field,
            format!("is {} bytes, the limit is {max_bytes}", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(invalid(field, "contains a NUL character"));
    }
    if !allow_whitespace_controls && super::printable::has_unshowable(value) {
        return Err(invalid(
            field,
            "contains control, zero-width or direction-changing characters",
        ));
    }
    Ok(())
}

/// An engagement event read from the stream, ready to store.
#[derive(Debug, Clone)]
pub struct StreamedEngagement {
    pub entry_id: String,
    /// Who wrote it (see [`super::producer`]).
    pub producer: String,
    pub engagement: Engagement,
}

/// A post's deletion read from the stream, ready to store.
#[derive(Debug, Clone)]
pub struct StreamedDeletion {
    pub entry_id: String,
    /// Who wrote it (see [`super::producer`]).
    pub producer: String,
    pub deletion: Deletion,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post_json() -> serde_json::Value {
        serde_json::json!({
            "type": "post", "id": "p1", "platform": "twitter",
            "author": {"id": "a1", "followers": 10},
            "text": "I love it", "created_at": "2026-01-01T00:00:00Z",
            "geo": {"city": "Paris", "country": "FR"}, "product": "phone"
        })
    }

    #[test]
    fn parses_a_post_with_optional_fields() {
        let e = Event::from_slice(post_json().to_string().as_bytes()).unwrap();
        let Event::Post(p) = e else {
            panic!("not a post")
        };
        assert_eq!(p.platform, Platform::Twitter);
        assert_eq!(p.city(), Some("Paris"));
        assert_eq!(p.product.as_deref(), Some("phone"));
    }

    #[test]
    fn parses_an_engagement() {
        let raw = r#"{"type":"engagement","post_id":"p1","kind":"share","at":"2026-01-01T00:00:01Z","via":"s9","actor_followers":5}"#;
        let Event::Engagement(e) = Event::from_slice(raw.as_bytes()).unwrap() else {
            panic!("not an engagement")
        };
        assert_eq!(e.kind, EngagementKind::Share);
        assert_eq!(e.via.as_deref(), Some("s9"));
    }

    #[test]
    fn refuses_bad_inputs_with_a_reason_class() {
        let mut missing = post_json();
        missing.as_object_mut().unwrap().remove("text");
        let mut wrong_type = post_json();
        wrong_type["author"]["followers"] = serde_json::json!("many");
        let mut oversize = post_json();
        oversize["text"] = serde_json::json!("a".repeat(MAX_TEXT_BYTES + 1));
        let mut nul = post_json();
        nul["text"] = serde_json::json!("a\u{0}b");
        let mut platform = post_json();
        platform["platform"] = serde_json::json!("myspace");
        let mut followers = post_json();
        followers["author"]["followers"] = serde_json::json!(1u64 << 63);

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{not json".to_vec(), "malformed"),
            (missing.to_string().into_bytes(), "malformed"),
            (wrong_type.to_string().into_bytes(), "malformed"),
            (oversize.to_string().into_bytes(), "invalid_field"),
            (nul.to_string().into_bytes(), "invalid_field"),
            (platform.to_string().into_bytes(), "malformed"),
            (followers.to_string().into_bytes(), "invalid_field"),
            (vec![b'"', 0xff, 0xfe, b'"'], "invalid_utf8"),
            (vec![b' '; MAX_EVENT_BYTES + 1], "too_large"),
        ];
        for (bytes, class) in cases {
            let err = Event::from_slice(&bytes).unwrap_err();
            assert_eq!(err.class(), class, "{err}");
        }
    }

    /// An id or a label that reads as another is another post, author or key: refused like one
    /// with a zero-width space, whichever unseen or direction-changing character makes it.
    #[test]
    fn ids_and_labels_that_read_as_others_are_refused() {
        for (field, value) in [
            ("id", "p1\u{061C}"),
            ("product", "phone\u{AD}"),
            ("channel", "organic\u{3164}"),
            ("parent_id", "p0\u{E0020}"),
        ] {
            let mut p = post_json();
            p[field] = serde_json::json!(value);
            let err = Event::from_slice(p.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.class(), "invalid_field", "{field} {value:?}: {err}");
        }
        let mut author = post_json();
        author["author"]["id"] = serde_json::json!("a1\u{34F}");
        let err = Event::from_slice(author.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.class(), "invalid_field", "{err}");
        let like = r#"{"type":"engagement","post_id":"p1\u061c","kind":"like",
            "at":"2026-01-01T00:00:00Z"}"#;
        let err = Event::from_slice(like.as_bytes()).unwrap_err();
        assert_eq!(err.class(), "invalid_field", "{err}");
        // Texts keep them: they are what people wrote.
        let mut text = post_json();
        text["text"] = serde_json::json!("so\u{AD}ft hy\u{AD}phens and \u{2764}\u{FE0F}");
        assert!(Event::from_slice(text.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn timestamps_are_bounded_by_the_epoch_and_a_little_skew() {
        let received: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
        let at = |created: &str| {
            let mut p = post_json();
            p["created_at"] = serde_json::json!(created);
            Event::from_slice_at(p.to_string().as_bytes(), received)
        };
        assert!(at("2026-06-01T12:04:59Z").is_ok());
        assert!(at("2011-03-01T00:00:00Z").is_ok());
        for bad in [
            "2026-06-01T12:05:01Z",
            "2099-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "-5000-01-01T00:00:00Z",
        ] {
            let err = at(bad).unwrap_err();
            assert_eq!(err.class(), "invalid_field", "{bad}: {err}");
        }
        let engagement =
            r#"{"type":"engagement","post_id":"p1","kind":"like","at":"2099-01-01T00:00:00Z"}"#;
        assert!(Event::from_slice_at(engagement.as_bytes(), received).is_err());
        // An old post is backfill, not refused.
        let Event::Post(old) = at("2025-01-01T00:00:00Z").unwrap() else {
            panic!("not a post")
        };
        assert!(old.is_backfill(received));
        let Event::Post(live) = at("2026-06-01T11:30:00Z").unwrap() else {
            panic!("not a post")
        };
        assert!(!live.is_backfill(received));
    }

    #[test]
    fn round_trips_through_json() {
        let e = Event::from_slice(post_json().to_string().as_bytes()).unwrap();
        let again = Event::from_slice(serde_json::to_string(&e).unwrap().as_bytes()).unwrap();
        assert_eq!(e, again);
    }
}
