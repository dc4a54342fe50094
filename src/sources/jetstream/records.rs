//! Jetstream messages to Pulse events. A message is one JSON object: `{"did", "time_us",
//! "kind": "commit" | "identity" | "account", "commit": {"operation", "collection", "rkey",
//! "record"}}`, and the record is the AT Protocol record as written (lexicons
//! `app.bsky.feed.post`, `.repost`, `.like`).
//!
//! Ids are stable across services and replays: a post is its AT URI
//! (`at://<did>/<collection>/<rkey>`); a repost or like is an engagement with the subject
//! post's URI as `post_id` and, as id, its account, collection and subject (one per account and
//! post, whatever record key each new like of it has), and, when the record names the repost it
//! came through (`via`), that repost's id as `via`, so cascades get the platform's own tree.
//! Authors' follower counts are not in Jetstream; they are sent as 0 (unknown).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::config::JetstreamSettings;
use crate::models::event::{MAX_FUTURE_SKEW, MAX_ID_BYTES};
use crate::models::{Author, Deletion, Engagement, EngagementKind, Event, Platform, Post};
use crate::sources::filter::{Listening, TextFilter};
use crate::sources::nullable::or_default;

const POST: &str = "app.bsky.feed.post";
const REPOST: &str = "app.bsky.feed.repost";
const LIKE: &str = "app.bsky.feed.like";
/// The collection segments of post and repost AT URIs.
const POST_PATH: &str = "/app.bsky.feed.post/";
const REPOST_PATH: &str = "/app.bsky.feed.repost/";

#[derive(Deserialize)]
struct Message<'a> {
    did: String,
    time_us: i64,
    kind: String,
    #[serde(default, borrow)]
    commit: Option<Commit<'a>>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    operation: String,
    collection: String,
    rkey: String,
    /// As written, read as the collection's record once the collection is known: built as a
    /// tree of values, a message of 1 MiB could take a hundred times that.
    #[serde(default, borrow)]
    record: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PostRecord {
    #[serde(default, deserialize_with = "or_default")]
    text: String,
    #[serde(rename = "createdAt", default, deserialize_with = "or_default")]
    created_at: String,
    #[serde(default, deserialize_with = "or_default")]
    langs: Vec<String>,
    #[serde(default)]
    reply: Option<Reply>,
}

#[derive(Deserialize)]
struct Reply {
    parent: StrongRef,
}

#[derive(Deserialize)]
struct StrongRef {
    uri: String,
}

#[derive(Deserialize)]
struct SubjectRecord {
    subject: StrongRef,
    #[serde(rename = "createdAt", default)]
    created_at: String,
    #[serde(default)]
    via: Option<StrongRef>,
}

/// What one message gave.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Event(Box<Event>),
    /// Left out, with the reason counted in `pulse_source_skipped_total`.
    Skipped(&'static str),
}

/// One message read: its position (the service's `time_us`, when it could be read) and what
/// it gave.
#[derive(Debug, PartialEq)]
pub struct Read {
    pub time_us: Option<i64>,
    pub outcome: Outcome,
}

/// The filters of one Jetstream source, and the tags it gives its posts.
pub struct Filter {
    text: TextFilter,
    product: Option<String>,
    channel: Option<String>,
}

impl Filter {
    pub fn new(
        s: &JetstreamSettings,
        listening: Listening,
        product: Option<String>,
        channel: Option<String>,
    ) -> Filter {
        Filter {
            text: TextFilter::new(listening, &s.languages, s.remembered_posts),
            product,
            channel,
        }
    }

    /// See [`TextFilter::remembers`].
    pub fn remembers(&self) -> usize {
        self.text.remembers()
    }

    /// See [`TextFilter::remember_kept`].
    pub fn remember_kept(&mut self, ids: impl IntoIterator<Item = String>) {
        self.text.remember_kept(ids);
    }
}

/// Reads one message received at `now`.
pub fn read(text: &str, filter: &mut Filter, now: DateTime<Utc>) -> Read {
    let Ok(message) = serde_json::from_str::<Message>(text) else {
        return Read {
            time_us: None,
            outcome: Outcome::Skipped("malformed"),
        };
    };
    let time_us = Some(message.time_us);
    let outcome = outcome(message, filter, now);
    Read { time_us, outcome }
}

fn outcome(message: Message<'_>, filter: &mut Filter, now: DateTime<Utc>) -> Outcome {
    let Some(commit) = message.commit.filter(|_| message.kind == "commit") else {
        return Outcome::Skipped("unsupported");
    };
    let uri = format!("at://{}/{}/{}", message.did, commit.collection, commit.rkey);
    let seen = DateTime::from_timestamp_micros(message.time_us).unwrap_or(now);
    match (commit.operation.as_str(), commit.collection.as_str()) {
        ("create", POST) => {
            let Some(record) = commit
                .record
                .and_then(|r| serde_json::from_str::<PostRecord>(r.get()).ok())
            else {
                return Outcome::Skipped("malformed");
            };
            if record.text.trim().is_empty() {
                return Outcome::Skipped("empty_text");
            }
            if !filter.text.keeps_post(&uri, &record.text, &record.langs) {
                return Outcome::Skipped("filtered");
            }
            let post = Post {
                url: Some(format!(
                    "https://bsky.app/profile/{}/post/{}",
                    message.did, commit.rkey
                )),
                id: uri,
                platform: Platform::Bluesky,
                author: Author {
                    id: message.did,
                    followers: 0,
                },
                text: record.text,
                created_at: time_of(&record.created_at, seen, now),
                lang: record.langs.into_iter().next(),
                geo: None,
                product: filter.product.clone(),
                channel: filter.channel.clone(),
                parent_id: record.reply.map(|r| r.parent.uri),
                metrics: None,
            };
            Outcome::Event(Box::new(Event::Post(post)))
        }
        ("create", REPOST | LIKE) => {
            let Some(record) = commit
                .record
                .and_then(|r| serde_json::from_str::<SubjectRecord>(r.get()).ok())
            else {
                return Outcome::Skipped("malformed");
            };
            if !is_post_uri(&record.subject.uri) {
                return Outcome::Skipped("unsupported");
            }
            if !filter.text.keeps_engagement(&record.subject.uri) {
                return Outcome::Skipped("filtered");
            }
            let kind = if commit.collection == REPOST {
                EngagementKind::Share
            } else {
                EngagementKind::Like
            };
            let subject = record.subject.uri;
            let via = record
                .via
                .filter(|v| v.uri.contains(REPOST_PATH))
                .and_then(|v| Some(engagement_id(author_of(&v.uri)?, REPOST, &subject)));
            let engagement = Engagement {
                id: Some(engagement_id(&message.did, &commit.collection, &subject)),
                post_id: subject,
                kind,
                at: time_of(&record.created_at, seen, now),
                actor_followers: None,
                via,
                count: None,
            };
            Outcome::Event(Box::new(Event::Engagement(engagement)))
        }
        ("delete", POST) if !filter.text.keeps_deletion(&uri) => Outcome::Skipped("filtered"),
        ("delete", POST) => Outcome::Event(Box::new(Event::Delete(Deletion {
            post_id: uri,
            at: seen.min(now),
        }))),
        // An undone repost or like: the engagement stays counted.
        ("delete", _) => Outcome::Skipped("deleted"),
        _ => Outcome::Skipped("unsupported"),
    }
}

/// The id of `did`'s like or repost (`collection`) of `subject`: one per account and post.
/// Each like or repost is a record of a new key, and an undone one (a delete, skipped) done
/// again is another; by the record's key, one account liking and unliking a post in a loop
/// was counted a like each time. It starts with the account (the follower lookup reads it
/// there); past the events' limit the subject is its SHA-256, and past it still, the whole.
fn engagement_id(did: &str, collection: &str, subject: &str) -> String {
    let sha256 = |text: &str| -> String {
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    };
    let id = format!("{did}/{collection}/{subject}");
    if id.len() <= MAX_ID_BYTES {
        return id;
    }
    let id = format!("{did}/{collection}/sha256:{}", sha256(subject));
    if id.len() <= MAX_ID_BYTES {
        return id;
    }
    format!("{collection}/sha256:{}", sha256(&id))
}

/// The account of an AT URI (`at://<did>/<collection>/<rkey>`).
fn author_of(uri: &str) -> Option<&str> {
    uri.strip_prefix("at://")?
        .split('/')
        .next()
        .filter(|did| !did.is_empty())
}

fn is_post_uri(uri: &str) -> bool {
    uri.starts_with("at://") && uri.contains(POST_PATH)
}

/// The record's own time when it is plausible, else when the service saw it: clients set
/// `createdAt` themselves, and a clock far ahead would otherwise be refused.
fn time_of(created_at: &str, seen: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(created_at) {
        Ok(t) => {
            let t = t.with_timezone(&Utc);
            if t > now + MAX_FUTURE_SKEW - TimeDelta::seconds(1) || t < DateTime::UNIX_EPOCH {
                seen.min(now)
            } else {
                t
            }
        }
        Err(_) => seen.min(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(keywords: &[&str], languages: &[&str]) -> Filter {
        let s = JetstreamSettings {
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            languages: languages.iter().map(|k| k.to_string()).collect(),
            remembered_posts: 2,
            ..JetstreamSettings::default()
        };
        let listening = Listening::new(&s.keywords, None, None).unwrap();
        Filter::new(&s, listening, None, Some("social".into()))
    }

    fn post_line(did: &str, rkey: &str, text: &str, langs: &str, extra: &str) -> String {
        format!(
            r#"{{"did":"{did}","time_us":1783175888090631,"kind":"commit","commit":{{"rev":"3mptbypcq372f","operation":"create","collection":"app.bsky.feed.post","rkey":"{rkey}","record":{{"$type":"app.bsky.feed.post","createdAt":"2026-07-04T14:38:06.240Z","langs":{langs},"text":"{text}"{extra}}},"cid":"bafyrei"}}}}"#
        )
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-07-04T14:40:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn event(r: Read) -> Event {
        match r.outcome {
            Outcome::Event(e) => *e,
            other => panic!("no event: {other:?}"),
        }
    }

    #[test]
    fn a_reply_becomes_a_post_with_its_parent_language_and_link() {
        let line = post_line(
            "did:plc:a",
            "3mp1",
            "Seit 14 Tagen geht es nicht",
            r#"["de"]"#,
            r#","reply":{"parent":{"cid":"c","uri":"at://did:plc:b/app.bsky.feed.post/3mp0"},"root":{"cid":"c","uri":"at://did:plc:b/app.bsky.feed.post/3mp0"}}"#,
        );
        let r = read(&line, &mut filter(&[], &[]), now());
        assert_eq!(r.time_us, Some(1783175888090631));
        let Event::Post(p) = event(r) else {
            panic!("not a post")
        };
        assert_eq!(p.id, "at://did:plc:a/app.bsky.feed.post/3mp1");
        assert_eq!(p.author.id, "did:plc:a");
        assert_eq!(p.lang.as_deref(), Some("de"));
        assert_eq!(p.channel.as_deref(), Some("social"));
        assert_eq!(
            p.parent_id.as_deref(),
            Some("at://did:plc:b/app.bsky.feed.post/3mp0")
        );
        assert_eq!(
            p.url.as_deref(),
            Some("https://bsky.app/profile/did:plc:a/post/3mp1")
        );
        assert_eq!(p.created_at.to_rfc3339(), "2026-07-04T14:38:06.240+00:00");
        assert!(Event::Post(p).validate_at(now()).is_ok());
    }

    #[test]
    fn a_repost_through_another_is_a_share_with_via() {
        let line = r#"{"did":"did:plc:c","time_us":1783175888114190,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.repost","rkey":"3mr2","record":{"$type":"app.bsky.feed.repost","createdAt":"2026-07-04T14:38:07.594Z","subject":{"cid":"c","uri":"at://did:plc:a/app.bsky.feed.post/3mp1"},"via":{"cid":"c","uri":"at://did:plc:b/app.bsky.feed.repost/3mr1"}},"cid":"c"}}"#;
        let Event::Engagement(e) = event(read(line, &mut filter(&[], &[]), now())) else {
            panic!("not an engagement")
        };
        assert_eq!(e.kind, EngagementKind::Share);
        assert_eq!(
            e.id.as_deref(),
            Some("did:plc:c/app.bsky.feed.repost/at://did:plc:a/app.bsky.feed.post/3mp1")
        );
        assert_eq!(e.post_id, "at://did:plc:a/app.bsky.feed.post/3mp1");
        // The repost it came through, by the id that repost was given.
        assert_eq!(
            e.via.as_deref(),
            Some("did:plc:b/app.bsky.feed.repost/at://did:plc:a/app.bsky.feed.post/3mp1")
        );
        assert!(Event::Engagement(e).validate_at(now()).is_ok());
    }

    /// Liking, unliking and liking a post again writes a like record of a new key each time;
    /// as engagements of those keys, one account looping on it was counted a like each time.
    #[test]
    fn an_account_that_likes_a_post_again_gives_the_same_like() {
        let mut f = filter(&[], &[]);
        let record = |did: &str, collection: &str, rkey: &str, subject: &str| {
            format!(
                r#"{{"did":"{did}","time_us":1783175888114190,"kind":"commit","commit":{{"rev":"r","operation":"create","collection":"{collection}","rkey":"{rkey}","record":{{"createdAt":"2026-07-04T14:38:07.594Z","subject":{{"cid":"c","uri":"{subject}"}}}},"cid":"c"}}}}"#
            )
        };
        let post = "at://did:plc:a/app.bsky.feed.post/3mp1";
        let mut id = |line: String| match event(read(&line, &mut f, now())) {
            Event::Engagement(e) => e.id.unwrap(),
            other => panic!("not an engagement: {other:?}"),
        };
        let like = "app.bsky.feed.like";
        let first = id(record("did:plc:z", like, "3l1", post));
        assert_eq!(first, id(record("did:plc:z", like, "3l2", post)));
        assert_ne!(
            first,
            id(record("did:plc:y", like, "3l1", post)),
            "another account"
        );
        let other_post = "at://did:plc:a/app.bsky.feed.post/3mp2";
        assert_ne!(first, id(record("did:plc:z", like, "3l3", other_post)));
        let repost = id(record("did:plc:z", "app.bsky.feed.repost", "3r1", post));
        assert_ne!(first, repost, "a repost is not the like");
        assert_eq!(
            repost,
            id(record("did:plc:z", "app.bsky.feed.repost", "3r2", post))
        );
        // A long subject is hashed, the account kept in front; an account of a long name
        // still gives an id within the events' limit.
        let long_post = format!(
            "at://did:web:{}.example/app.bsky.feed.post/1",
            "b".repeat(240)
        );
        let kept = id(record("did:plc:z", like, "3l1", &long_post));
        assert!(
            kept.starts_with("did:plc:z/app.bsky.feed.like/sha256:"),
            "{kept}"
        );
        assert!(kept.len() <= MAX_ID_BYTES, "{kept}");
        let long = format!("did:web:{}.example", "a".repeat(300));
        let hashed = id(record(&long, like, "3l1", post));
        assert!(hashed.len() <= MAX_ID_BYTES, "{hashed}");
        assert_eq!(hashed, id(record(&long, like, "3l9", post)));
        assert_ne!(hashed, id(record(&format!("{long}x"), like, "3l1", post)));
    }

    #[test]
    fn a_post_whose_languages_are_null_is_read() {
        let mut f = filter(&[], &[]);
        let line = post_line("did:plc:a", "k9", "null langs", "null", "");
        let Outcome::Event(event) = read(&line, &mut f, now()).outcome else {
            panic!("not read")
        };
        let Event::Post(p) = *event else {
            panic!("not a post")
        };
        assert_eq!((p.text.as_str(), p.lang), ("null langs", None));
    }

    #[test]
    fn filters_keep_matching_posts_and_their_engagements_only() {
        let mut f = filter(&["Buds"], &["en"]);
        let kept = post_line("did:plc:a", "k1", "my pulse BUDS died", r#"["en-US"]"#, "");
        let other_lang = post_line("did:plc:a", "k2", "meine buds", r#"["de"]"#, "");
        let other_text = post_line("did:plc:a", "k3", "nice weather", r#"["en"]"#, "");
        assert!(matches!(
            read(&kept, &mut f, now()).outcome,
            Outcome::Event(_)
        ));
        assert_eq!(
            read(&other_lang, &mut f, now()).outcome,
            Outcome::Skipped("filtered")
        );
        assert_eq!(
            read(&other_text, &mut f, now()).outcome,
            Outcome::Skipped("filtered")
        );
        let like = |post: &str| {
            format!(
                r#"{{"did":"did:plc:z","time_us":1783175888114190,"kind":"commit","commit":{{"rev":"r","operation":"create","collection":"app.bsky.feed.like","rkey":"l","record":{{"$type":"app.bsky.feed.like","createdAt":"2026-07-04T14:38:07.594Z","subject":{{"cid":"c","uri":"at://did:plc:a/app.bsky.feed.post/{post}"}}}},"cid":"c"}}}}"#
            )
        };
        assert!(matches!(
            read(&like("k1"), &mut f, now()).outcome,
            Outcome::Event(_)
        ));
        assert_eq!(
            read(&like("k3"), &mut f, now()).outcome,
            Outcome::Skipped("filtered")
        );
        // Remembered posts are bounded: the oldest is forgotten first.
        for k in ["k4", "k5"] {
            read(
                &post_line("did:plc:a", k, "buds", r#"["en"]"#, ""),
                &mut f,
                now(),
            );
        }
        assert_eq!(
            read(&like("k1"), &mut f, now()).outcome,
            Outcome::Skipped("filtered")
        );
    }

    #[test]
    fn odd_messages_are_skipped_with_a_reason_and_never_panic() {
        let mut f = filter(&[], &[]);
        let cases = [
            ("{", "malformed"),
            ("[]", "malformed"),
            (
                r#"{"did":"d","time_us":1,"kind":"identity","identity":{}}"#,
                "unsupported",
            ),
            (
                r#"{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"delete","collection":"app.bsky.feed.like","rkey":"x"}}"#,
                "deleted",
            ),
            (
                r#"{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.graph.follow","rkey":"x","record":{}}}"#,
                "unsupported",
            ),
            (
                r#"{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"x","record":{"text":12}}}"#,
                "malformed",
            ),
            (
                r#"{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"x","record":{"text":"  ","createdAt":"x"}}}"#,
                "empty_text",
            ),
            (
                r#"{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.like","rkey":"x","record":{"subject":{"uri":"at://d/app.bsky.feed.generator/x"},"createdAt":"x"}}}"#,
                "unsupported",
            ),
        ];
        for (line, reason) in cases {
            assert_eq!(
                read(line, &mut f, now()).outcome,
                Outcome::Skipped(reason),
                "{line}"
            );
        }
    }

    #[test]
    fn a_deleted_post_becomes_a_delete_event() {
        let line = r#"{"did":"did:plc:a","time_us":1783175888090631,"kind":"commit","commit":{"rev":"r","operation":"delete","collection":"app.bsky.feed.post","rkey":"3mp1"}}"#;
        let Event::Delete(d) = event(read(line, &mut filter(&[], &[]), now())) else {
            panic!("not a deletion")
        };
        assert_eq!(d.post_id, "at://did:plc:a/app.bsky.feed.post/3mp1");
        assert_eq!(d.at.timestamp_micros(), 1783175888090631);
    }

    /// A source with keywords forwarded every post deletion of the network, each stored
    /// for a post it never kept.
    #[test]
    fn with_keywords_only_the_deletion_of_a_kept_post_is_forwarded() {
        let mut f = filter(&["buds"], &[]);
        let delete = |rkey: &str| {
            format!(
                r#"{{"did":"did:plc:a","time_us":1783175888090631,"kind":"commit","commit":{{"rev":"r","operation":"delete","collection":"app.bsky.feed.post","rkey":"{rkey}"}}}}"#
            )
        };
        assert_eq!(
            read(&delete("k1"), &mut f, now()).outcome,
            Outcome::Skipped("filtered"),
            "a post never kept"
        );
        let kept = post_line("did:plc:a", "k1", "my buds died", "[]", "");
        assert!(matches!(
            read(&kept, &mut f, now()).outcome,
            Outcome::Event(_)
        ));
        let Event::Delete(d) = event(read(&delete("k1"), &mut f, now())) else {
            panic!("not a deletion")
        };
        assert_eq!(d.post_id, "at://did:plc:a/app.bsky.feed.post/k1");
        // Kept by an earlier run.
        let mut restarted = filter(&["buds"], &[]);
        restarted.remember_kept(["at://did:plc:a/app.bsky.feed.post/k1".to_string()]);
        assert!(matches!(
            read(&delete("k1"), &mut restarted, now()).outcome,
            Outcome::Event(_)
        ));
    }

    #[test]
    fn a_clock_far_ahead_falls_back_to_the_service_time() {
        let line = post_line("did:plc:a", "f1", "from the future", "[]", "")
            .replace("2026-07-04T14:38:06.240Z", "2099-01-01T00:00:00Z");
        let Event::Post(p) = event(read(&line, &mut filter(&[], &[]), now())) else {
            panic!("not a post")
        };
        assert_eq!(p.created_at.timestamp_micros(), 1783175888090631);
        assert_eq!(p.lang, None);
    }
}
