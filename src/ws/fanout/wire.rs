//! The payload format of the fan-out channel: messages of one origin, numbered, their text
//! carried byte for byte.

use std::sync::Arc;

use bytestring::ByteString;
use serde::Deserialize;

use crate::ws::protocol::{FilterKeys, Topic};

/// One live message as every process delivers it: its topic, what it is about (matched
/// against session filters) and its final text, serialized once by the process that
/// produced it.
#[derive(Debug, Clone)]
pub struct FanoutItem {
    pub topic: Topic,
    pub keys: Arc<FilterKeys>,
    pub text: ByteString,
}

/// Version of the payload format, so a mixed-version group skips what it cannot read.
const WIRE_VERSION: u8 = 1;
/// A payload is published once it holds this many bytes of messages.
const MAX_PAYLOAD_BYTES: usize = 512 * 1024;

/// Appends one payload's header; items follow, then [`close_payload`].
fn open_payload(out: &mut String, origin: &str, first: u64) {
    out.clear();
    out.push_str(r#"{"v":"#);
    out.push_str(&WIRE_VERSION.to_string());
    out.push_str(r#","origin":""#);
    out.push_str(origin);
    out.push_str(r#"","first":"#);
    out.push_str(&first.to_string());
    out.push_str(r#","items":["#);
}

/// Appends one item: its text is JSON already, so it goes in as is and comes out byte for
/// byte.
fn push_item(out: &mut String, item: &FanoutItem, first_in_payload: bool) {
    if !first_in_payload {
        out.push(',');
    }
    out.push_str(r#"{"topic":""#);
    out.push_str(item.topic.as_str());
    out.push_str(r#"","keys":"#);
    out.push_str(&serde_json::to_string(&*item.keys).unwrap_or_else(|_| "{}".into()));
    out.push_str(r#","msg":"#);
    out.push_str(&item.text);
    out.push('}');
}

fn close_payload(out: &mut String) {
    out.push_str("]}");
}

/// Builds the payloads for `batches`, numbering messages from `*next`.
pub(super) fn payloads(
    origin: &str,
    batches: &[Vec<FanoutItem>],
    next: &mut u64,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_current = 0u64;
    for item in batches.iter().flatten() {
        if in_current == 0 {
            open_payload(&mut current, origin, *next);
        }
        push_item(&mut current, item, in_current == 0);
        in_current += 1;
        *next += 1;
        if current.len() >= MAX_PAYLOAD_BYTES {
            close_payload(&mut current);
            out.push((std::mem::take(&mut current), in_current));
            in_current = 0;
        }
    }
    if in_current > 0 {
        close_payload(&mut current);
        out.push((current, in_current));
    }
    out
}

#[derive(Deserialize)]
struct InPayload<'a> {
    v: u8,
    origin: String,
    first: u64,
    #[serde(borrow)]
    items: Vec<InItem<'a>>,
}

#[derive(Deserialize)]
struct InItem<'a> {
    topic: String,
    keys: FilterKeys,
    #[serde(borrow)]
    msg: &'a serde_json::value::RawValue,
}

/// The start of every payload `origin` publishes, to recognise its own without parsing them.
pub(super) fn own_prefix(origin: &str) -> Vec<u8> {
    let mut out = String::new();
    open_payload(&mut out, origin, 0);
    let end = out.find(r#","first":"#).map_or(out.len(), |i| i + 1);
    out.truncate(end);
    out.into_bytes()
}

/// Parses a payload into items; `None` when it is not one.
pub(super) fn parse(bytes: &[u8]) -> Option<(String, u64, Vec<FanoutItem>)> {
    let payload: InPayload<'_> = serde_json::from_slice(bytes).ok()?;
    if payload.v != WIRE_VERSION {
        return None;
    }
    let mut items = Vec::with_capacity(payload.items.len());
    for item in payload.items {
        items.push(FanoutItem {
            topic: Topic::parse(&item.topic)?,
            keys: Arc::new(item.keys),
            text: ByteString::from(item.msg.get().to_owned()),
        });
    }
    Some((payload.origin, payload.first, items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Platform;

    fn item(topic: Topic, text: &str, platform: Option<Platform>) -> FanoutItem {
        FanoutItem {
            topic,
            keys: Arc::new(FilterKeys {
                platform,
                ..FilterKeys::default()
            }),
            text: ByteString::from(text.to_string()),
        }
    }

    #[test]
    fn payloads_carry_messages_byte_for_byte_and_number_them() {
        let text = r#"{"type":"message:new","data":{"id":"a\"b","text":"caf\u00e9 \n"}}"#;
        let batches = vec![
            vec![item(Topic::Posts, text, Some(Platform::Reddit))],
            vec![item(
                Topic::Alerts,
                r#"{"type":"alert:churn","data":{}}"#,
                None,
            )],
        ];
        let mut next = 7;
        let out = payloads("me", &batches, &mut next);
        assert_eq!(next, 9);
        assert_eq!(out.len(), 1);
        let (from, first, items) = parse(out[0].0.as_bytes()).unwrap();
        assert_eq!((from.as_str(), first, out[0].1), ("me", 7, 2));
        assert!(out[0].0.as_bytes().starts_with(&own_prefix("me")));
        assert!(!out[0].0.as_bytes().starts_with(&own_prefix("m")));
        assert_eq!(&*items[0].text, text);
        assert_eq!(items[0].topic, Topic::Posts);
        assert_eq!(items[0].keys.platform, Some(Platform::Reddit));
        assert_eq!(items[1].topic, Topic::Alerts);
        assert_eq!(*items[1].keys, FilterKeys::default());
    }

    #[test]
    fn large_batches_are_split_into_bounded_payloads_without_gaps() {
        let text = format!(
            r#"{{"type":"message:new","data":{{"text":"{}"}}}}"#,
            "x".repeat(10_000)
        );
        let batch: Vec<FanoutItem> = (0..200).map(|_| item(Topic::Posts, &text, None)).collect();
        let mut next = 0;
        let out = payloads("o", &[batch], &mut next);
        assert!(out.len() > 1);
        let mut expected = 0;
        for (payload, n) in &out {
            assert!(payload.len() < MAX_PAYLOAD_BYTES + 20_000);
            let (_, first, items) = parse(payload.as_bytes()).unwrap();
            assert_eq!(first, expected);
            assert_eq!(items.len() as u64, *n);
            expected += n;
        }
        assert_eq!(expected, 200);
    }

    #[test]
    fn foreign_or_broken_payloads_are_refused() {
        assert!(parse(b"not json").is_none());
        assert!(parse(br#"{"v":2,"origin":"x","first":0,"items":[]}"#).is_none());
        assert!(parse(
            br#"{"v":1,"origin":"x","first":0,"items":[{"topic":"nope","keys":{},"msg":{}}]}"#
        )
        .is_none());
        assert!(parse(br#"{"v":1,"origin":"x","first":0,"items":[]}"#).is_some());
    }
}
