//! Fuzzes the WebSocket client-message parser with whole frames.
//!
//! The input is the payload of one text message. A session only parses text that is UTF-8:
//! actix refuses a text frame that is not, and a fragmented message that is not closes the
//! socket before parsing, so anything else stops here too.
//!
//! Properties checked: nothing panics; the error code matches the input (`invalid_json` exactly
//! when the frame is not JSON, `unknown_type` exactly when `type` is a string naming no client
//! message); every error has a message, bounded in size, and serializes to a valid `error`
//! frame; an accepted subscription holds exactly the topics named, all known, and filter labels
//! within their limits; the `subscribed` reply the server builds from it, sent back as a
//! `subscribe`, parses to the same subscription.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::models::event::MAX_LABEL_BYTES;
use pulse::ws::protocol::{
    self, ClientMessage, ErrorCode, Filter, Topic, TopicSet, MAX_ERROR_MESSAGE_BYTES,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = protocol::parse_client_message(text);
    let json = serde_json::from_str::<Value>(text).ok();
    match parsed {
        Err(e) => {
            assert!(
                !e.message.trim().is_empty(),
                "{:?} without a message",
                e.code
            );
            assert!(
                e.message.len() <= MAX_ERROR_MESSAGE_BYTES,
                "{:?} message of {} bytes",
                e.code,
                e.message.len()
            );
            assert_eq!(e.code == ErrorCode::InvalidJson, json.is_none(), "{e}");
            let kind = json.as_ref().and_then(|v| v.get("type")).map(Value::as_str);
            let unknown_type =
                matches!(kind, Some(Some(k)) if !["subscribe", "unsubscribe", "ping"].contains(&k));
            assert_eq!(e.code == ErrorCode::UnknownType, unknown_type, "{e}");
            // The reply frame is JSON carrying the same code.
            let reply: Value = serde_json::from_str(&protocol::error(&e)).expect("error is JSON");
            assert_eq!(reply["type"], "error");
            assert_eq!(reply["error"]["message"], e.message.as_str());
            assert_eq!(
                reply["error"]["code"],
                serde_json::to_value(e.code).expect("a code serializes")
            );
            // Never a code that only the session itself produces.
            assert!(!matches!(
                e.code,
                ErrorCode::TooManyTopics | ErrorCode::UnsupportedFrame
            ));
        }
        Ok(message) => {
            let json = json.expect("an accepted message is JSON");
            let object = json.as_object().expect("an accepted message is an object");
            match &message {
                ClientMessage::Ping => {
                    assert_eq!(object.len(), 1);
                    assert_eq!(json["type"], "ping");
                }
                ClientMessage::Unsubscribe { topics } => {
                    assert_eq!(json["type"], "unsubscribe");
                    check_topics(*topics, &json["topics"]);
                }
                ClientMessage::Subscribe { topics, filter } => {
                    assert_eq!(json["type"], "subscribe");
                    check_topics(*topics, &json["topics"]);
                    if let Some(filter) = filter {
                        check_filter(filter);
                    }
                    round_trip(*topics, filter.clone().unwrap_or_default());
                }
            }
        }
    }
});

/// The set holds exactly the (known) topics the array names.
fn check_topics(topics: TopicSet, names: &Value) {
    let names: Vec<&str> = names
        .as_array()
        .expect("topics is an array")
        .iter()
        .map(|n| n.as_str().expect("a topic is a string"))
        .collect();
    assert!(topics.len() <= Topic::ALL.len());
    assert_eq!(topics.iter().count(), topics.len());
    for name in &names {
        let topic = Topic::parse(name).expect("an accepted topic is known");
        assert!(topics.contains(topic));
    }
    for topic in topics.iter() {
        assert!(
            names.contains(&topic.as_str()),
            "{topic:?} was not asked for"
        );
    }
}

fn check_filter(filter: &Filter) {
    let keys = filter.keys();
    for label in [&keys.product, &keys.city, &keys.country, &keys.channel]
        .into_iter()
        .flatten()
    {
        assert!(!label.is_empty() && label.len() <= MAX_LABEL_BYTES);
    }
}

/// The `subscribed` reply describes the subscription in the request's own terms: sent back as
/// a `subscribe`, it asks for the same thing.
fn round_trip(topics: TopicSet, filter: Filter) {
    let reply: Value =
        serde_json::from_str(&protocol::subscribed(topics, &filter)).expect("reply is JSON");
    assert_eq!(reply["type"], "subscribed");
    let again = serde_json::json!({
        "type": "subscribe",
        "topics": reply["topics"],
        "filter": reply["filter"],
    });
    let parsed = protocol::parse_client_message(&again.to_string());
    assert_eq!(
        parsed,
        Ok(ClientMessage::Subscribe {
            topics,
            filter: Some(filter)
        }),
        "{again}"
    );
}
