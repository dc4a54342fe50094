//! The JSON protocol spoken over `GET /ws`, both directions. `docs/websocket.md` documents it
//! for client authors; this file is the reference it is checked against.
//!
//! Client frames are parsed in two steps: the wire shape (serde, unknown fields refused), then
//! validation into domain types ([`Topic`], [`Filter`]), so every refusal carries a precise
//! [`ErrorCode`]. Server frames are built here too, each serialized once.

use std::fmt;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::models::event::MAX_LABEL_BYTES;
pub use crate::models::live::{
    FilterKeys, Topic, ALERT_PREFIX, MESSAGE_DELETED, MESSAGE_NEW, METRICS_INITIAL, METRICS_UPDATE,
    STORY_NEW, STORY_UPDATE, VIRALITY_UPDATE,
};
use crate::models::text::prefix_chars;
use crate::models::{Platform, SentimentLabel};

/// The class of `topic`'s messages.
pub fn class_of(topic: Topic) -> MessageClass {
    match topic {
        Topic::Posts => MessageClass::Message,
        Topic::Metrics => MessageClass::Metrics,
        Topic::Alerts => MessageClass::Alert,
        Topic::Virality => MessageClass::Virality,
        Topic::Stories => MessageClass::Story,
    }
}

fn bit(topic: Topic) -> u8 {
    1 << (topic as u8)
}

/// The classes of server messages: the `type` label of `pulse_ws_messages_sent_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageClass {
    /// `message:new`.
    Message,
    /// `metrics:initial` and `metrics:update`.
    Metrics,
    /// `alert:<kind>`.
    Alert,
    /// `virality:update`.
    Virality,
    /// `story:new` and `story:update`.
    Story,
    /// Replies and notices: `subscribed`, `error`, `pong`, `lagged`.
    Control,
}

impl MessageClass {
    /// Every class, in the order of their discriminants.
    pub const ALL: [MessageClass; 6] = [
        MessageClass::Message,
        MessageClass::Metrics,
        MessageClass::Alert,
        MessageClass::Virality,
        MessageClass::Story,
        MessageClass::Control,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            MessageClass::Message => "message",
            MessageClass::Metrics => "metrics",
            MessageClass::Alert => "alert",
            MessageClass::Virality => "virality",
            MessageClass::Story => "story",
            MessageClass::Control => "control",
        }
    }
}

/// A set of topics, as one session holds them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicSet(u8);

impl TopicSet {
    /// Whether `topic` is in the set.
    pub fn contains(self, topic: Topic) -> bool {
        self.0 & bit(topic) != 0
    }

    /// Adds `topic`.
    pub fn insert(&mut self, topic: Topic) {
        self.0 |= bit(topic);
    }

    /// Every topic of either set.
    pub fn union(self, other: TopicSet) -> TopicSet {
        TopicSet(self.0 | other.0)
    }

    /// The topics of `self` that are not in `other`.
    pub fn difference(self, other: TopicSet) -> TopicSet {
        TopicSet(self.0 & !other.0)
    }

    /// How many topics the set holds.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The topics in documentation order.
    pub fn iter(self) -> impl Iterator<Item = Topic> {
        Topic::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

impl Serialize for TopicSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Topic::as_str))
    }
}

/// A session's filter: the key values an event must carry to be delivered. An empty filter
/// lets everything through; a set field excludes events that carry another value *or none*.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Filter(FilterKeys);

/// A post of no language is `und` to a filter, as facets and rollups show it.
fn lang_ok(want: &Option<String>, have: &Option<String>) -> bool {
    match (want.as_deref(), have.as_deref()) {
        (None, _) => true,
        (Some("und"), None) => true,
        (want, have) => want == have,
    }
}

impl Filter {
    /// Whether an event with `keys` passes.
    pub fn matches(&self, keys: &FilterKeys) -> bool {
        fn ok<T: PartialEq>(want: &Option<T>, have: &Option<T>) -> bool {
            want.is_none() || want == have
        }
        let f = &self.0;
        ok(&f.platform, &keys.platform)
            && ok(&f.sentiment, &keys.sentiment)
            && ok(&f.product, &keys.product)
            && ok(&f.city, &keys.city)
            && ok(&f.country, &keys.country)
            && ok(&f.channel, &keys.channel)
            && lang_ok(&f.lang, &keys.lang)
            // A filter's topics are sorted when it is parsed; a post may match many topics.
            && (f.topics.is_empty() || keys.topics.iter().any(|t| f.topics.binary_search(t).is_ok()))
    }

    /// Whether the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.0 == FilterKeys::default()
    }

    /// The filter's required values.
    pub fn keys(&self) -> &FilterKeys {
        &self.0
    }
}

/// A client message after validation.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// Adds `topics` to the session's topics; a present `filter` replaces the session's
    /// filter, an absent one keeps it.
    Subscribe {
        topics: TopicSet,
        filter: Option<Filter>,
    },
    /// Removes `topics` from the session's topics; the filter stays.
    Unsubscribe { topics: TopicSet },
    /// Asks for a `pong`, for clients that cannot send WebSocket pings (browsers).
    Ping,
}

/// The codes of `error` messages: the API's codes (`invalid_json`, `unknown_topic`, ...).
pub use crate::models::errors::ErrorCode;

/// Longest `message` of an `error` reply, in bytes. serde's messages quote the offending name
/// or value whole (`unknown field `...``), so without a bound a client could have up to a frame
/// of its own text echoed back and logged for every refusal.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 256;

/// Why a client message was refused; sent back as an `error` message, the socket stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: ErrorCode,
    /// At most [`MAX_ERROR_MESSAGE_BYTES`]; a longer one is cut and ends with `…`.
    pub message: String,
}

impl ClientError {
    /// An error with `code` and a human-readable `message`, cut to
    /// [`MAX_ERROR_MESSAGE_BYTES`].
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        crate::models::text::ellipsize_bytes(&mut message, MAX_ERROR_MESSAGE_BYTES);
        Self { code, message }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

/// The wire shape of client messages, before validation.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum WireMessage {
    Subscribe {
        topics: Vec<String>,
        #[serde(default)]
        filter: Option<Box<WireFilter>>,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
    // A struct variant, so that unknown fields are refused here too.
    Ping {},
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFilter {
    platform: Option<String>,
    product: Option<String>,
    city: Option<String>,
    country: Option<String>,
    channel: Option<String>,
    sentiment: Option<String>,
    lang: Option<String>,
    /// A topic's id: only events about it.
    topic: Option<i64>,
    /// Topics' ids: only events about at least one of them.
    topics: Option<Vec<i64>>,
}

/// Most topics one filter may name.
pub const MAX_FILTER_TOPICS: usize = 100;

/// The client message types, for the `unknown_type` error.
const CLIENT_TYPES: [&str; 3] = ["subscribe", "unsubscribe", "ping"];

/// Parses and validates one text frame.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ClientError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ClientError::new(ErrorCode::InvalidJson, e.to_string()))?;
    let kind = value.get("type").and_then(|t| t.as_str()).ok_or_else(|| {
        ClientError::new(
            ErrorCode::InvalidMessage,
            "a message is a JSON object with a string `type`",
        )
    })?;
    if !CLIENT_TYPES.contains(&kind) {
        return Err(ClientError::new(
            ErrorCode::UnknownType,
            format!(
                "unknown message type `{}`; expected one of {}",
                prefix_chars(kind, ECHOED_CHARS),
                CLIENT_TYPES.join(", ")
            ),
        ));
    }
    let wire: WireMessage = serde_json::from_value(value)
        .map_err(|e| ClientError::new(ErrorCode::InvalidMessage, e.to_string()))?;
    Ok(match wire {
        WireMessage::Subscribe { topics, filter } => ClientMessage::Subscribe {
            topics: parse_topics(&topics)?,
            filter: filter.map(|f| parse_filter(*f)).transpose()?,
        },
        WireMessage::Unsubscribe { topics } => ClientMessage::Unsubscribe {
            topics: parse_topics(&topics)?,
        },
        WireMessage::Ping {} => ClientMessage::Ping,
    })
}

fn parse_topics(names: &[String]) -> Result<TopicSet, ClientError> {
    let mut set = TopicSet::default();
    for name in names {
        let topic = Topic::parse(name).ok_or_else(|| {
            ClientError::new(
                ErrorCode::UnknownTopic,
                format!(
                    "unknown topic `{}`; expected one of {}",
                    prefix_chars(name, ECHOED_CHARS),
                    Topic::ALL.map(Topic::as_str).join(", ")
                ),
            )
        })?;
        set.insert(topic);
    }
    Ok(set)
}

fn parse_filter(wire: WireFilter) -> Result<Filter, ClientError> {
    let invalid = |message: String| ClientError::new(ErrorCode::InvalidFilter, message);
    let platform = wire
        .platform
        .map(|p| {
            Platform::parse(&p).ok_or_else(|| {
                invalid(format!(
                    "unknown platform `{}`",
                    prefix_chars(&p, ECHOED_CHARS)
                ))
            })
        })
        .transpose()?;
    let sentiment = wire
        .sentiment
        .map(|s| {
            SentimentLabel::parse(&s).ok_or_else(|| {
                invalid("sentiment must be negative, neutral or positive".to_string())
            })
        })
        .transpose()?;
    let label = |field: &str, value: Option<String>| -> Result<Option<String>, ClientError> {
        match value {
            Some(v) if v.is_empty() || v.len() > MAX_LABEL_BYTES => Err(invalid(format!(
                "`{field}` must be 1 to {MAX_LABEL_BYTES} bytes"
            ))),
            // No stored label holds one, and the value is echoed in `subscribed`.
            Some(v) if crate::models::printable::has_unshowable(&v) => Err(invalid(format!(
                "`{field}` holds a control, invisible or direction character"
            ))),
            v => Ok(v),
        }
    };
    let mut topics: Vec<i64> = wire
        .topic
        .into_iter()
        .chain(wire.topics.into_iter().flatten())
        .collect();
    topics.sort_unstable();
    topics.dedup();
    if topics.len() > MAX_FILTER_TOPICS {
        return Err(invalid(format!(
            "a filter names at most {MAX_FILTER_TOPICS} topics"
        )));
    }
    Ok(Filter(FilterKeys {
        platform,
        product: label("product", wire.product)?,
        city: label("city", wire.city)?,
        country: label("country", wire.country)?,
        channel: label("channel", wire.channel)?,
        sentiment,
        lang: label("lang", wire.lang)?
            .map(|l| crate::analysis::language::canonical_tag(&l.to_ascii_lowercase())),
        topics,
    }))
}

/// Characters of client-supplied text echoed in an error, so an error is never larger than a
/// label.
const ECHOED_CHARS: usize = MAX_LABEL_BYTES / 4;

/// Server messages that are answers or notices to one session (not fan-out).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control<'a> {
    Subscribed {
        topics: TopicSet,
        filter: &'a Filter,
    },
    Error {
        error: ErrorBody<'a>,
    },
    Lagged {
        dropped: u64,
    },
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
}

fn control(message: &Control<'_>) -> String {
    serde_json::to_string(message).expect("control messages serialize")
}

/// `{"type":"subscribed","topics":[..],"filter":{..}}`: the session's whole subscription after
/// a `subscribe` or `unsubscribe`.
pub fn subscribed(topics: TopicSet, filter: &Filter) -> String {
    control(&Control::Subscribed { topics, filter })
}

/// `{"type":"error","error":{"code":..,"message":..}}`.
pub fn error(e: &ClientError) -> String {
    control(&Control::Error {
        error: ErrorBody {
            code: e.code,
            message: &e.message,
        },
    })
}

/// `{"type":"lagged","dropped":N}`: this many messages were dropped since the last one.
pub fn lagged(dropped: u64) -> String {
    control(&Control::Lagged { dropped })
}

/// The answer to a client `ping`.
pub const PONG: &str = r#"{"type":"pong"}"#;

/// `{"type":<event_type>,"data":<data>}` where `data` is already-serialized JSON, built once
/// and shared by every session it goes to.
pub fn envelope(event_type: &str, data: &str) -> ByteString {
    let event_type = serde_json::to_string(event_type).expect("a string serializes");
    let mut out = String::with_capacity(event_type.len() + data.len() + 20);
    out.push_str(r#"{"type":"#);
    out.push_str(&event_type);
    out.push_str(r#","data":"#);
    out.push_str(data);
    out.push('}');
    out.into()
}

/// `{"type":<event_type>,"data":<value>}` for a value serialized here.
pub fn envelope_of<T: Serialize>(event_type: &str, data: &T) -> ByteString {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        r#type: &'a str,
        data: &'a T,
    }
    serde_json::to_string(&Envelope {
        r#type: event_type,
        data,
    })
    .expect("protocol payloads serialize")
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        parse_client_message(text).unwrap_err().code
    }

    #[test]
    fn parses_subscribe_with_filter_and_the_other_messages() {
        let m = parse_client_message(
            r#"{"type":"subscribe","topics":["posts","metrics"],"filter":{"platform":"reddit","sentiment":"negative","city":"Lyon"}}"#,
        )
        .unwrap();
        let ClientMessage::Subscribe { topics, filter } = m else {
            panic!("not a subscribe")
        };
        assert!(topics.contains(Topic::Posts) && topics.contains(Topic::Metrics));
        assert_eq!(topics.len(), 2);
        let filter = filter.unwrap();
        assert_eq!(filter.keys().platform, Some(Platform::Reddit));
        assert_eq!(filter.keys().sentiment, Some(SentimentLabel::Negative));
        assert_eq!(filter.keys().city.as_deref(), Some("Lyon"));
        assert_eq!(
            parse_client_message(r#"{"type":"ping"}"#).unwrap(),
            ClientMessage::Ping
        );
        assert!(matches!(
            parse_client_message(r#"{"type":"unsubscribe","topics":["alerts"]}"#).unwrap(),
            ClientMessage::Unsubscribe { topics } if topics.contains(Topic::Alerts) && topics.len() == 1
        ));
    }

    #[test]
    fn refuses_bad_messages_with_precise_codes() {
        assert_eq!(code("not json"), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"subscribe","topics":["gossip"]}"#),
            ErrorCode::UnknownTopic
        );
        assert_eq!(
            code(r#"{"type":"subscribe","topics":["posts"],"filter":{"platform":"myspace"}}"#),
            ErrorCode::InvalidFilter
        );
        assert_eq!(
            code(r#"{"type":"subscribe","topics":["posts"],"filter":{"sentiment":"meh"}}"#),
            ErrorCode::InvalidFilter
        );
        assert_eq!(
            code(r#"{"type":"subscribe","topics":["posts"],"filter":{"city":""}}"#),
            ErrorCode::InvalidFilter
        );
        for value in [r"a\u0000b", r"pulse\u200bphone", r"abc\u202ecba"] {
            let message = format!(
                r#"{{"type":"subscribe","topics":["posts"],"filter":{{"city":"{value}"}}}}"#
            );
            assert_eq!(code(&message), ErrorCode::InvalidFilter, "{message}");
        }
        assert_eq!(
            code(r#"{"type":"subscribe","topics":["posts"],"filter":{"mood":"x"}}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":"subscribe","topics":["posts"],"extra":1}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(code(r#"{"type":"ping","x":1}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"subscribe"}"#), ErrorCode::InvalidMessage);
    }

    #[test]
    fn error_messages_are_bounded_whatever_the_client_sent() {
        // serde quotes an unknown field name whole; a frame-sized name came back whole.
        let long_field = format!(
            r#"{{"type":"subscribe","top{}ics":["posts"]}}"#,
            "é".repeat(300)
        );
        let e = parse_client_message(&long_field).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage);
        assert!(
            e.message.starts_with("unknown field `topéé"),
            "{}",
            e.message
        );
        assert!(e.message.len() <= MAX_ERROR_MESSAGE_BYTES && e.message.ends_with('…'));
        let long_value = format!(
            r#"{{"type":"unsubscribe","topics":"{}"}}"#,
            "x".repeat(70_000)
        );
        let e = parse_client_message(&long_value).unwrap_err();
        assert!(
            e.message.len() <= MAX_ERROR_MESSAGE_BYTES,
            "{}",
            e.message.len()
        );
        // Short messages are left alone.
        assert_eq!(ClientError::new(ErrorCode::UnknownType, "no").message, "no");
    }

    #[test]
    fn a_filter_requires_every_set_key_and_an_empty_one_passes_everything() {
        let keys = FilterKeys {
            platform: Some(Platform::Reddit),
            sentiment: Some(SentimentLabel::Negative),
            city: Some("Lyon".into()),
            ..FilterKeys::default()
        };
        assert!(Filter::default().matches(&keys));
        let reddit_negative = Filter(FilterKeys {
            platform: Some(Platform::Reddit),
            sentiment: Some(SentimentLabel::Negative),
            ..FilterKeys::default()
        });
        assert!(reddit_negative.matches(&keys));
        let twitter = Filter(FilterKeys {
            platform: Some(Platform::Twitter),
            ..FilterKeys::default()
        });
        assert!(!twitter.matches(&keys));
        let product = Filter(FilterKeys {
            product: Some("pulse-phone".into()),
            ..FilterKeys::default()
        });
        assert!(
            !product.matches(&keys),
            "an event without the key does not pass"
        );
        // A post of no language is `und`, as the facets name it.
        let und = Filter(FilterKeys {
            lang: Some("und".into()),
            ..FilterKeys::default()
        });
        assert!(und.matches(&keys));
        let tagged = FilterKeys {
            lang: Some("de".into()),
            ..keys.clone()
        };
        assert!(!und.matches(&tagged));
        let of_topics = parse_filter_topics(&[9, 1, 5]);
        let about = |topics: Vec<i64>| FilterKeys {
            topics,
            ..keys.clone()
        };
        assert!(of_topics.matches(&about(vec![2, 3, 9])));
        assert!(!of_topics.matches(&about(vec![2, 3, 4, 6])));
        assert!(!of_topics.matches(&keys), "a post of no topic");
    }

    /// A filter naming `topics`, as a client's message would.
    fn parse_filter_topics(topics: &[i64]) -> Filter {
        let message = serde_json::json!({"type": "subscribe", "topics": ["posts"], "filter": {"topics": topics}});
        match parse_client_message(&message.to_string()).unwrap() {
            ClientMessage::Subscribe {
                filter: Some(f), ..
            } => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_messages_have_the_documented_shapes() {
        let filter = Filter(FilterKeys {
            platform: Some(Platform::Reddit),
            ..FilterKeys::default()
        });
        let mut topics = TopicSet::default();
        topics.insert(Topic::Metrics);
        topics.insert(Topic::Posts);
        assert_eq!(
            subscribed(topics, &filter),
            r#"{"type":"subscribed","topics":["posts","metrics"],"filter":{"platform":"reddit"}}"#
        );
        assert_eq!(lagged(7), r#"{"type":"lagged","dropped":7}"#);
        assert_eq!(
            error(&ClientError::new(ErrorCode::UnknownTopic, "no")),
            r#"{"type":"error","error":{"code":"unknown_topic","message":"no"}}"#
        );
        assert_eq!(
            &*envelope("alert:spike", r#"{"n":1}"#),
            r#"{"type":"alert:spike","data":{"n":1}}"#
        );
        let v: serde_json::Value = serde_json::from_str(PONG).unwrap();
        assert_eq!(v["type"], "pong");
    }

    #[test]
    fn a_language_filter_passes_only_posts_in_that_language() {
        let ClientMessage::Subscribe {
            filter: Some(filter),
            ..
        } = parse_client_message(
            r#"{"type":"subscribe","topics":["posts"],"filter":{"lang":"DE"}}"#,
        )
        .unwrap()
        else {
            panic!("a subscribe with a filter");
        };
        let post = |lang: Option<&str>| FilterKeys {
            lang: lang.map(str::to_string),
            ..FilterKeys::default()
        };
        assert!(filter.matches(&post(Some("de"))));
        assert!(!filter.matches(&post(Some("en"))));
        assert!(!filter.matches(&post(None)));
    }
}
