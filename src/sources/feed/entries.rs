//! Feed entries (RSS 0.9x/1.0/2.0, Atom, JSON Feed, through `feed-rs`) to Pulse posts: the
//! entry's title and summary (or content) as text, channel `news` unless the source sets one,
//! the entry's author (else the feed's, else its title) as the author, the entry's link as
//! the URL.
//!
//! What was handled is remembered by the entries themselves, not only by their dates: a feed
//! whose items share a date (whole days, whole minutes), an aggregator that lists a new item
//! with an older date, and an item dated years ahead would each lose entries to a position
//! that is a time alone.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::models::event::{MAX_FUTURE_SKEW, MAX_ID_BYTES};
use crate::models::text::prefix_chars;
use crate::models::{Author, Event, Platform, Post};
use crate::sources::filter::TextFilter;
use crate::sources::html;

/// Tags every post of the source gets.
pub struct Tags {
    pub product: Option<String>,
    pub channel: Option<String>,
    pub max_text_chars: usize,
}

/// Entries of one document remembered; a longer feed's older entries are told apart by date.
const MAX_SEEN: usize = 500;

/// An entry missing from the last document and older than this before the newest handled is
/// an old one that came back (an archive page, a feed that lists more), not a new one.
const LOOKBACK: TimeDelta = TimeDelta::days(7);

/// Where a feed stands between polls (and across restarts, stored with the events).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// The newest entry date handled, never ahead of the time it was read.
    pub newest: Option<DateTime<Utc>>,
    /// Digests of the ids of the last document's entries, handled or left out; empty in a
    /// position stored before they were kept (then `newest` alone decides, as it did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u64>,
}

/// The parser Pulse reads feeds with: an entry without an id or a link gets none (`feed-rs`
/// would give it a random one, a new post at every poll), so [`events`] names it by its
/// text.
pub fn parser() -> feed_rs::parser::Parser {
    feed_rs::parser::Builder::new()
        .id_generator(|links, title, uri| match links.first() {
            Some(_) => feed_rs::parser::generate_id(links, title, uri),
            None => String::new(),
        })
        .build()
}

/// The events of one fetched feed's entries not handled at `position`, with the skipped
/// entries' reasons, and the position after them.
pub fn events(
    feed: feed_rs::model::Feed,
    url: &str,
    position: &Position,
    filter: &mut TextFilter,
    tags: &Tags,
    now: DateTime<Utc>,
) -> (Vec<Event>, Vec<&'static str>, Position) {
    let plausible = now + MAX_FUTURE_SKEW / 2;
    // A position stored while dates ahead of now could move it is brought back to now.
    let newest = position.newest.map(|n| n.min(now));
    let seen: HashSet<u64> = position.seen.iter().copied().collect();
    let mut next_seen = Vec::new();
    let author = feed
        .authors
        .first()
        .and_then(person_name)
        .or_else(|| feed.title.as_ref().map(|t| html::to_text(&t.content)))
        .filter(|t| !t.is_empty())
        // Shown to analysts, so without the credentials a feed URL can carry.
        .unwrap_or_else(|| crate::egress::redact_url(url));
    let feed_lang = feed.language.clone();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut latest = newest;
    for (index, entry) in feed.entries.into_iter().enumerate() {
        let at = entry.published.or(entry.updated);
        let title = entry
            .title
            .as_ref()
            .map(|t| html::to_text(&t.content))
            .unwrap_or_default();
        let body = entry
            .summary
            .as_ref()
            .map(|s| html::to_text(&s.content))
            .or_else(|| {
                entry
                    .content
                    .as_ref()
                    .and_then(|c| c.body.as_deref())
                    .map(html::to_text)
            })
            .unwrap_or_default();
        let mut text = match (title.is_empty(), body.is_empty() || body == title) {
            (false, false) => format!("{title}\n{body}"),
            (false, true) => title,
            (true, _) => body,
        };
        let id = entry_id(url, &entry.id, &text);
        let digest = digest64(&id);
        if next_seen.len() < MAX_SEEN {
            next_seen.push(digest);
        }
        // Past the entries remembered, a long feed's entries are told apart by date, as a
        // position stored before entries were remembered tells all of them (an undated entry
        // was then sent at every poll: it has been).
        let by_date = seen.is_empty() || index >= MAX_SEEN;
        let handled = seen.contains(&digest)
            || match (at, newest) {
                (Some(at), Some(newest)) if by_date => at <= newest,
                (Some(at), Some(newest)) => at < newest - LOOKBACK,
                (None, Some(_)) => by_date,
                (_, None) => false,
            };
        if handled {
            continue;
        }
        if let Some(at) = at {
            let at = at.min(now);
            latest = Some(latest.map_or(at, |l| l.max(at)));
        }
        if text.trim().is_empty() {
            skipped.push("empty_text");
            continue;
        }
        text.truncate(prefix_chars(&text, tags.max_text_chars).len());
        let lang = entry.language.clone().or_else(|| feed_lang.clone());
        let langs: Vec<String> = lang.iter().cloned().collect();
        if !filter.keeps_post(&id, &text, &langs) {
            skipped.push("filtered");
            continue;
        }
        let created_at = match at {
            Some(t) if t <= plausible && t >= DateTime::UNIX_EPOCH => t,
            _ => now,
        };
        out.push(Event::Post(Post {
            id,
            platform: Platform::Other,
            author: Author {
                id: entry
                    .authors
                    .first()
                    .and_then(person_name)
                    .filter(|n| n.len() <= MAX_ID_BYTES)
                    .unwrap_or_else(|| prefix_chars(&author, 200).to_string()),
                followers: 0,
            },
            text,
            created_at,
            lang,
            geo: None,
            product: tags.product.clone(),
            channel: Some(tags.channel.clone().unwrap_or_else(|| "news".into())),
            parent_id: None,
            // The page itself: Blogger and others list the comments feed and the edit link
            // first.
            url: entry
                .links
                .iter()
                .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
                .or(entry.links.first())
                .map(|l| l.href.clone())
                .filter(|h| h.len() <= 2_048),
            metrics: None,
        }));
    }
    let next = Position {
        newest: latest,
        seen: if next_seen.is_empty() {
            position.seen.clone()
        } else {
            next_seen
        },
    };
    (out, skipped, next)
}

/// How a person of a feed is named. RSS 2.0's `<author>` and `<managingEditor>` hold an
/// address, often with the name in brackets (`jane@news.example (Jane Doe)`), and `feed-rs`
/// gives such a person the element's name as theirs: the bracketed name, else the address.
fn person_name(person: &feed_rs::model::Person) -> Option<String> {
    let name = match (&person.email, person.name.as_str()) {
        (Some(email), "author" | "managingEditor" | "webMaster") => email
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, _)| name)
            .filter(|name| !name.trim().is_empty())
            .unwrap_or(email),
        (_, name) => name,
    };
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

/// `feed:` and the entry's own id when it names itself globally (a URL, a `tag:` or `urn:`
/// id) and is short enough; else a digest of the feed URL and the id, so two feeds' item
/// `1234` stay two posts; an entry with neither id nor link, by its text. The same entry
/// always gets the same id.
fn entry_id(url: &str, id: &str, text: &str) -> String {
    let id = id.trim();
    if id.contains(':') && id.len() <= MAX_ID_BYTES - 5 {
        return format!("feed:{id}");
    }
    let named = if id.is_empty() { text } else { id };
    let digest = Sha256::digest(format!("{url}\n{named}").as_bytes());
    format!("feed:{}", crate::models::hex::hex(&digest[..16]))
}

fn digest64(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Gadget News</title><language>en-us</language>
<item><title>Pulse Buds recall</title><link>https://news.example/recall</link><description>&lt;p&gt;Batteries &amp;amp; chargers affected.&lt;/p&gt;</description><pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate><guid>https://news.example/recall</guid></item>
<item><title>Old story</title><link>https://news.example/old</link><pubDate>Mon, 02 Nov 2026 09:00:00 GMT</pubDate><guid>https://news.example/old</guid></item>
<item><title></title><guid>empty</guid></item>
</channel></rss>"#;

    #[test]
    fn entries_newer_than_the_last_poll_become_news_posts() {
        let feed = feed_rs::parser::parse(RSS.as_bytes()).unwrap();
        let tags = Tags {
            product: None,
            channel: None,
            max_text_chars: 20,
        };
        let newest = DateTime::parse_from_rfc3339("2026-11-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut filter = TextFilter::new(Default::default(), &[], 10);
        let (events, skipped, latest) = events(
            feed,
            "https://news.example/rss",
            &Position {
                newest: Some(newest),
                seen: Vec::new(),
            },
            &mut filter,
            &tags,
            Utc::now(),
        );
        assert_eq!(events.len(), 1, "the old story was seen before");
        // The undated entry, sent at every poll under a position of dates alone, is not
        // looked at again.
        assert!(skipped.is_empty(), "{skipped:?}");
        let Event::Post(p) = &events[0] else {
            panic!("not a post")
        };
        assert_eq!(p.id, "feed:https://news.example/recall");
        assert_eq!(p.text, "Pulse Buds recall\nBa", "cut at 20 characters");
        assert_eq!(p.channel.as_deref(), Some("news"));
        assert_eq!(p.author.id, "Gadget News");
        assert_eq!(p.lang.as_deref(), Some("en-us"));
        assert_eq!(
            latest.newest.unwrap().to_rfc3339(),
            "2026-11-10T09:00:00+00:00"
        );
        assert_eq!(latest.seen.len(), 3);
        assert_eq!(entry_id("u", &"x".repeat(300), "t").len(), 5 + 32);
    }

    fn rss(items: &[String]) -> feed_rs::model::Feed {
        let doc = format!(
            r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Daily</title>{}</channel></rss>"#,
            items.concat()
        );
        parser().parse(doc.as_bytes()).unwrap()
    }

    fn item(guid: Option<&str>, title: &str, at: Option<DateTime<Utc>>) -> String {
        format!(
            "<item>{}<title>{title}</title>{}</item>",
            guid.map(|g| format!("<guid isPermaLink=\"false\">{g}</guid>"))
                .unwrap_or_default(),
            at.map(|at| format!("<pubDate>{}</pubDate>", at.to_rfc2822()))
                .unwrap_or_default()
        )
    }

    fn ids(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Post(p) => p.text.clone(),
                _ => panic!("not a post"),
            })
            .collect()
    }

    #[test]
    fn entries_of_one_date_late_ones_and_ones_dated_ahead_are_each_read_once() {
        let now = Utc::now();
        let hour_ago = now - TimeDelta::hours(1);
        let ahead = now + TimeDelta::days(365 * 70);
        let tags = Tags {
            product: None,
            channel: None,
            max_text_chars: 100,
        };
        let mut filter = TextFilter::new(Default::default(), &[], 10);
        let url = "https://daily.example/rss";
        let first = [
            item(Some("1"), "one", Some(hour_ago)),
            item(Some("2"), "two", Some(hour_ago)),
            item(Some("f"), "from the future", Some(ahead)),
            item(None, "no id, no link, no date", None),
            item(Some("e"), "", Some(hour_ago)),
        ];
        let (events1, skipped, position) = events(
            rss(&first),
            url,
            &Position::default(),
            &mut filter,
            &tags,
            now,
        );
        assert_eq!(events1.len(), 4);
        assert_eq!(skipped, ["empty_text"]);
        assert!(position.newest.unwrap() <= now + MAX_FUTURE_SKEW);
        // The next poll: a third item of the same date, an old one that came back, and the
        // rest as before.
        let mut second = first.to_vec();
        second.push(item(Some("3"), "three", Some(hour_ago)));
        second.push(item(
            Some("old"),
            "a month old",
            Some(now - TimeDelta::days(30)),
        ));
        let (events2, _, position) = events(rss(&second), url, &position, &mut filter, &tags, now);
        assert_eq!(ids(&events2), ["three"]);
        let (events3, _, _) = events(rss(&second), url, &position, &mut filter, &tags, now);
        assert!(events3.is_empty(), "{:?}", ids(&events3));
        // A position stored before entries were remembered: dated entries up to it and
        // undated ones (sent at every poll then) are not sent again.
        let old_format = Position {
            newest: Some(hour_ago),
            seen: Vec::new(),
        };
        let (events4, _, _) = events(rss(&second), url, &old_format, &mut filter, &tags, now);
        assert_eq!(ids(&events4), ["from the future"]);
        // Two feeds' item "1" are two posts.
        let Event::Post(p) = &events1[0] else {
            unreachable!()
        };
        assert_ne!(p.id, entry_id("https://other.example/rss", "1", "one"));
    }

    #[test]
    fn an_rss_author_is_named_by_the_name_beside_the_address() {
        let doc = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><managingEditor>desk@news.example</managingEditor>
<item><guid>https://news.example/1</guid><title>one</title><author>jane@news.example (Jane Doe)</author></item>
<item><guid>https://news.example/2</guid><title>two</title></item>
</channel></rss>"#;
        let feed = parser().parse(doc.as_bytes()).unwrap();
        let tags = Tags {
            product: None,
            channel: None,
            max_text_chars: 100,
        };
        let mut filter = TextFilter::new(Default::default(), &[], 10);
        let (events, _, _) = events(
            feed,
            "u",
            &Position::default(),
            &mut filter,
            &tags,
            Utc::now(),
        );
        let authors: Vec<&str> = events
            .iter()
            .map(|e| match e {
                Event::Post(p) => p.author.id.as_str(),
                _ => panic!("not a post"),
            })
            .collect();
        assert_eq!(authors, ["Jane Doe", "T"], "else the feed's title");
    }
}
