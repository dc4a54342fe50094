//! Feed entries (RSS 0.9x/1.0/2.0, Atom, JSON Feed, through `feed-rs`) to Pulse posts: the
//! entry's title and summary (or content) as text, channel `news` unless the source sets one,
//! the entry's author (else the feed's, else its title) as the author, the entry's link as
//! the URL.
//!
//! An entry without an id is named by its page link, so that editing its title does not make
//! it a new post (see `own_id`).
//!
//! An entry keeps its own id only where that id names the feed's own site: a feed may list
//! any id, and the first post stored under an id keeps it, so a feed that could use another
//! site's ids could publish its own text under the id of that site's next entry.
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
    /// Digests of the last document's entries' own ids (as their posts' ids were before
    /// those were checked against the feed's site; for an entry without one, its link, see
    /// `own_id`), handled or left out; empty in a position stored before they were kept (then
    /// `newest` alone decides, as it did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u64>,
}

/// The parser Pulse reads feeds with, resolving relative links against `base` (the URL the
/// document came from). An entry without an id gets none here: `feed-rs` would make one of
/// its link and its title (a new post when the title is edited), or a random one (a new post
/// at every poll); [`events`] names it (see `own_id`).
pub fn parser(base: Option<&str>) -> feed_rs::parser::Parser {
    feed_rs::parser::Builder::new()
        .base_uri(base)
        .id_generator(|_, _, _| String::new())
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
    let shared = shared_links(&feed.entries);
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
        let own = own_id(&entry, &shared);
        let id = entry_id(url, &own, &text);
        let digest = digest64(&entry_key(url, &own, &text));
        if next_seen.len() < MAX_SEEN {
            next_seen.push(digest);
        }
        // Past the entries remembered, a long feed's entries are told apart by date, as a
        // position stored before entries were remembered tells all of them (an undated entry
        // was then sent at every poll: it has been).
        let by_date = seen.is_empty() || index >= MAX_SEEN;
        let handled = seen.contains(&digest)
            || earlier_ids(&entry)
                .iter()
                .any(|earlier| seen.contains(&digest64(&entry_key(url, earlier, &text))))
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
            url: page_link(&entry)
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

/// An entry's link to its page: Blogger and others list the comments feed and the edit link
/// first.
fn page_link(entry: &feed_rs::model::Entry) -> Option<&feed_rs::model::Link> {
    entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or(entry.links.first())
}

/// The page links that two entries without an id or more share in one document (a feed
/// that links every item to its front page): such entries are told apart by title too.
fn shared_links(entries: &[feed_rs::model::Entry]) -> HashSet<String> {
    let mut once = HashSet::new();
    let mut twice = HashSet::new();
    let links = entries
        .iter()
        .filter(|e| e.id.trim().is_empty())
        .filter_map(page_link);
    for link in links {
        if !once.insert(link.href.as_str()) {
            twice.insert(link.href.clone());
        }
    }
    twice
}

/// What names an entry: its own id; without one (RSS 1.0 and 0.9x have none, RSS 2.0 only a
/// `<guid>`), its page link, which stays when its title is edited, unless another entry of
/// the document shares it ([`shared_links`]): then that link and the title, as `feed-rs`
/// names them. Nothing for an entry with neither id nor link ([`entry_id`] then names it
/// by its text).
fn own_id(entry: &feed_rs::model::Entry, shared: &HashSet<String>) -> String {
    let id = entry.id.trim();
    if !id.is_empty() {
        return id.to_string();
    }
    match page_link(entry) {
        Some(link) if !shared.contains(&link.href) => link.href.clone(),
        Some(_) => link_and_title(entry.links[0].href.clone(), entry),
        None => String::new(),
    }
}

/// The names an entry without an id had before [`own_id`], which positions stored then
/// remember it by: `feed-rs`'s digest of its first link and its title, that link being as
/// now or, where the feed writes it relative, as it was then kept (the path on, as
/// `/2026/11/recall`). None for an entry with an id or without a link.
fn earlier_ids(entry: &feed_rs::model::Entry) -> Vec<String> {
    let Some(first) = entry.links.first().filter(|_| entry.id.trim().is_empty()) else {
        return Vec::new();
    };
    let mut hrefs = vec![first.href.clone()];
    if let Some(path) = url::Url::parse(&first.href)
        .ok()
        .filter(url::Url::has_host)
        .map(|u| u[url::Position::BeforePath..].to_string())
    {
        hrefs.push(path);
    }
    hrefs
        .into_iter()
        .map(|href| link_and_title(href, entry))
        .collect()
}

/// `feed-rs`'s name for an entry of link `href` (its first) and its title.
fn link_and_title(href: String, entry: &feed_rs::model::Entry) -> String {
    let link = feed_rs::model::Link {
        href,
        ..entry.links[0].clone()
    };
    feed_rs::parser::generate_id_from_link_and_title(&link, &entry.title)
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
/// id), is short enough, and names the feed's own site ([`names_site_of`]). A feed is
/// third-party content: one that names another site's entry (a guessed WordPress
/// `?p=1235`, a copied `urn:uuid:`) gets an id of its own ([`scoped_id`]), so it cannot
/// store its text under the id the other site's entry will have. Any other entry: a digest
/// of the feed URL and the id, so two feeds' item `1234` stay two posts; an entry with
/// neither id nor link, by its text. The same entry always gets the same id.
fn entry_id(url: &str, id: &str, text: &str) -> String {
    let id = id.trim();
    if !names_itself(id) {
        hashed_id(url, id, text)
    } else if names_site_of(id, url) {
        format!("feed:{id}")
    } else {
        scoped_id(url, id)
    }
}

/// What a position remembers an entry by: its id as it was before ids were checked against
/// the feed's site, so that an entry handled then is not sent again under its scoped id
/// after an upgrade. A position is its feed's own, so no other feed's entries match it.
fn entry_key(url: &str, id: &str, text: &str) -> String {
    let id = id.trim();
    if names_itself(id) {
        format!("feed:{id}")
    } else {
        hashed_id(url, id, text)
    }
}

/// An id that holds a `:` (a URL, a `tag:` or `urn:` id) and fits behind `feed:`.
fn names_itself(id: &str) -> bool {
    id.contains(':') && id.len() <= MAX_ID_BYTES - 5
}

/// `feed:` and a digest of the feed URL and the id (the entry's text when it has none).
fn hashed_id(url: &str, id: &str, text: &str) -> String {
    let named = if id.is_empty() { text } else { id };
    format!("feed:{}", digest(url, named))
}

/// `feed:<feed host>/` and the digest of [`hashed_id`]: readable as the feed's, unlike any
/// id kept as is (those begin with a scheme), and the feed's alone, however many feeds share
/// its host (the digest is of the whole feed URL). Just `feed:` and the digest when the host
/// is too long to fit.
fn scoped_id(url: &str, id: &str) -> String {
    let digest = digest(url, id);
    match url_host(url) {
        Some(host) if 5 + host.len() + 1 + digest.len() <= MAX_ID_BYTES => {
            format!("feed:{host}/{digest}")
        }
        _ => format!("feed:{digest}"),
    }
}

/// 32 hexadecimal digits of a digest of the feed URL and what names the entry.
fn digest(url: &str, named: &str) -> String {
    let digest = Sha256::digest(format!("{url}\n{named}").as_bytes());
    crate::models::hex::hex(&digest[..16])
}

/// Whether an entry id names the feed's own site: the id's host (a URL's, or a `tag:` id's
/// authority) and the feed URL's are one site's ([`same_site`]). The entry's link does not
/// count: the feed writes it as freely as the id. An id without a host (`urn:`) names no
/// site, and any feed could copy it.
fn names_site_of(id: &str, feed_url: &str) -> bool {
    match (id_host(id), url_host(feed_url)) {
        (Some(id_host), Some(feed_host)) => same_site(&id_host, &feed_host),
        _ => false,
    }
}

/// The host an entry id names: a `tag:` id's authority, else the host of an id that reads
/// as a URL.
fn id_host(id: &str) -> Option<String> {
    match id.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tag:") => tag_authority(&id[4..]),
        _ => url_host(id),
    }
}

/// The domain of a `tag:` id (RFC 4151: `tag:example.com,2005:...`, or
/// `tag:jane@example.com,2005:...`, an address whose domain counts); none when it is not a
/// plain domain name.
fn tag_authority(rest: &str) -> Option<String> {
    let (authority, _) = rest.split_once(',')?;
    let domain = authority
        .rsplit_once('@')
        .map_or(authority, |(_, domain)| domain)
        .to_ascii_lowercase();
    let plain = domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    Some(domain).filter(|d| plain && !d.is_empty())
}

/// The host of a URL, lower case, without its port.
fn url_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    Some(host).filter(|h| !h.is_empty())
}

/// Whether two hosts are one site's: the same name once a trailing `.` and a leading `www.`
/// are dropped, or one a subdomain of the other (`feeds.example.com` and `www.example.com`,
/// `blog.example.com` and `example.com`; not `blog.example.com` and `shop.example.com`, so
/// the sites of a shared domain such as `alice.github.io` and `bob.github.io` stay apart).
/// Without a list of public suffixes, a name of one label (`com`) is nobody's parent, and an
/// address is only itself.
fn same_site(a: &str, b: &str) -> bool {
    let (a, b) = (site_name(a), site_name(b));
    a == b || (is_domain(a) && is_domain(b) && (is_subdomain(a, b) || is_subdomain(b, a)))
}

fn site_name(host: &str) -> &str {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.strip_prefix("www.").unwrap_or(host)
}

/// Whether `child` lies under `parent`, a name of two labels or more.
fn is_subdomain(child: &str, parent: &str) -> bool {
    parent.contains('.')
        && child
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// A domain name, not an IP address.
fn is_domain(host: &str) -> bool {
    !host.starts_with('[') && host.parse::<std::net::Ipv4Addr>().is_err()
}

fn digest64(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::posts;

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Gadget News</title><language>en-us</language>
<item><title>Pulse Buds recall</title><link>https://news.example/recall</link><description>&lt;p&gt;Batteries &amp;amp; chargers affected.&lt;/p&gt;</description><pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate><guid>https://news.example/recall</guid></item>
<item><title>Old story</title><link>https://news.example/old</link><pubDate>Mon, 02 Nov 2026 09:00:00 GMT</pubDate><guid>https://news.example/old</guid></item>
<item><title></title><guid>empty</guid></item>
</channel></rss>"#;

    /// Tags naming no product or channel, texts cut at `max_text_chars`, and a filter that
    /// keeps every text.
    fn untagged(max_text_chars: usize) -> (Tags, TextFilter) {
        let tags = Tags {
            product: None,
            channel: None,
            max_text_chars,
        };
        (tags, TextFilter::new(Default::default(), &[], 10))
    }

    #[test]
    fn entries_newer_than_the_last_poll_become_news_posts() {
        let feed = feed_rs::parser::parse(RSS.as_bytes()).unwrap();
        let (tags, mut filter) = untagged(20);
        let newest = DateTime::parse_from_rfc3339("2026-11-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
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
        parser(None).parse(doc.as_bytes()).unwrap()
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

    /// The texts of `events`' posts, which name these tests' entries.
    fn ids(events: &[Event]) -> Vec<String> {
        posts(events).into_iter().map(|p| p.text.clone()).collect()
    }

    /// The events of a first poll of `feed` at `url`, now, tagged and filtered as [`untagged`]
    /// makes them (texts of 100 characters at most).
    fn first_poll(feed: feed_rs::model::Feed, url: &str) -> Vec<Event> {
        let (tags, mut filter) = untagged(100);
        let (events, _, _) = events(
            feed,
            url,
            &Position::default(),
            &mut filter,
            &tags,
            Utc::now(),
        );
        events
    }

    #[test]
    fn entries_of_one_date_late_ones_and_ones_dated_ahead_are_each_read_once() {
        let now = Utc::now();
        let hour_ago = now - TimeDelta::hours(1);
        let ahead = now + TimeDelta::days(365 * 70);
        let (tags, mut filter) = untagged(100);
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
        let feed = parser(None).parse(doc.as_bytes()).unwrap();
        let events = first_poll(feed, "u");
        let authors: Vec<&str> = posts(&events)
            .into_iter()
            .map(|p| p.author.id.as_str())
            .collect();
        assert_eq!(authors, ["Jane Doe", "T"], "else the feed's title");
    }

    #[test]
    fn an_entry_id_on_the_feeds_own_site_is_kept_as_it_was() {
        let kept = [
            ("https://news.example/rss", "https://news.example/recall"),
            (
                "https://feeds.example.com/rss",
                "https://www.example.com/?p=1235",
            ),
            (
                "https://www.example.com/feed/",
                "http://example.com/2026/11/recall",
            ),
            ("https://blog.example.com/feed", "https://example.com/?p=7"),
            (
                "https://News.Example./rss",
                "HTTPS://NEWS.EXAMPLE:8443/recall",
            ),
        ];
        for (feed, id) in kept {
            assert_eq!(entry_id(feed, id, "t"), format!("feed:{id}"), "{feed}");
            assert_eq!(entry_id(feed, id, "t"), entry_key(feed, id, "t"));
        }
    }

    #[test]
    fn an_entry_id_on_another_site_is_the_feeds_own() {
        let victim = "https://victim.example/?p=1235";
        let one = entry_id("https://aggregator.example/rss", victim, "t");
        let two = entry_id("https://other.example/feed", victim, "t");
        assert!(one.starts_with("feed:aggregator.example/"), "{one}");
        assert!(two.starts_with("feed:other.example/"), "{two}");
        assert_ne!(one, two);
        assert_eq!(one, entry_id("https://aggregator.example/rss", victim, "u"));
        // Two feeds of one host are two publishers.
        assert_ne!(
            entry_id("https://feeds.host.example/alice", victim, "t"),
            entry_id("https://feeds.host.example/bob", victim, "t")
        );
        let foreign = [
            (
                "https://blog.example.com/feed",
                "https://shop.example.com/1",
            ),
            ("https://example.com/feed", "https://evilexample.com/1"),
            (
                "https://evil.example/rss",
                "https://evil.example@victim.example/1",
            ),
            (
                "https://alice.github.io/feed.xml",
                "https://bob.github.io/1",
            ),
            ("https://evil.com/rss", "https://com/1"),
            ("http://1.2.3.4/rss", "http://2.3.4/1"),
        ];
        for (feed, id) in foreign {
            let scoped = entry_id(feed, id, "t");
            assert_ne!(scoped, format!("feed:{id}"), "{feed} {id}");
            assert!(!scoped.contains(id), "{scoped}");
        }
        // Remembered as before, so an entry handled before it was scoped is not sent again.
        assert_eq!(
            entry_key("https://aggregator.example/rss", victim, "t"),
            format!("feed:{victim}")
        );
    }

    #[test]
    fn a_tag_id_is_kept_where_its_authority_is_the_feeds_site() {
        let atom = "https://news.example/atom";
        for id in [
            "tag:news.example,2026:/recall",
            "tag:jane@news.example,2026-11:post-1",
            "TAG:www.news.example,2026:3",
        ] {
            assert_eq!(entry_id(atom, id, "t"), format!("feed:{id}"));
        }
        let releases = "https://github.com/owner/repo/releases.atom";
        let release = "tag:github.com,2008:Repository/123/v1.0";
        assert_eq!(entry_id(releases, release, "t"), format!("feed:{release}"));
        for id in [
            "tag:victim.example,2026:/recall",
            "tag:news.example.victim.example,2026:1",
            "tag:news.example/x,2026:1",
            "tag:news.example",
        ] {
            assert!(
                entry_id(atom, id, "t").starts_with("feed:news.example/"),
                "{id}"
            );
        }
    }

    #[test]
    fn ids_that_name_no_site_are_the_feeds_own() {
        let urn = "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a";
        let blog = entry_id("https://blog.example/atom", urn, "t");
        assert!(blog.starts_with("feed:blog.example/"), "{blog}");
        assert_ne!(blog, entry_id("https://copy.example/atom", urn, "t"));
        assert_ne!(blog, format!("feed:{urn}"));
        // A feed URL without a host: the digest alone.
        let bare = entry_id("u", "mailto:desk@news.example", "t");
        assert_eq!(bare.len(), 5 + 32, "{bare}");
        assert!(bare[5..].bytes().all(|b| b.is_ascii_hexdigit()), "{bare}");
    }

    #[test]
    fn long_ids_and_long_hosts_stay_within_the_id_limit() {
        let path = "p".repeat(MAX_ID_BYTES - 5 - "https://victim.example/".len());
        let longest = format!("https://victim.example/{path}");
        assert_eq!(longest.len(), MAX_ID_BYTES - 5);
        let own = entry_id("https://victim.example/rss", &longest, "t");
        assert_eq!(own, format!("feed:{longest}"));
        assert_eq!(own.len(), MAX_ID_BYTES);
        let scoped = entry_id("https://other.example/rss", &longest, "t");
        assert!(scoped.starts_with("feed:other.example/"), "{scoped}");
        assert!(scoped.len() <= MAX_ID_BYTES);
        let too_long = format!("{longest}p");
        assert_eq!(
            entry_id("https://victim.example/rss", &too_long, "t").len(),
            5 + 32
        );
        let host = [
            "h".repeat(60),
            "o".repeat(60),
            "s".repeat(60),
            "t".repeat(60),
        ]
        .join(".");
        let far = entry_id(&format!("https://{host}/rss"), "urn:x:1", "t");
        assert_eq!(far.len(), 5 + 32, "{far}");
        assert!(!far.contains(&host));
    }

    #[test]
    fn an_entry_handled_before_its_id_was_scoped_is_not_sent_again() {
        let now = Utc::now();
        let hour_ago = now - TimeDelta::hours(1);
        let (tags, mut filter) = untagged(100);
        let handled = "https://elsewhere.example/1";
        // The position an earlier version stored: the digest of the id it gave the entry.
        let position = Position {
            newest: Some(hour_ago),
            seen: vec![digest64(&format!("feed:{handled}"))],
        };
        let doc = [
            item(Some(handled), "handled", Some(hour_ago)),
            item(Some("https://elsewhere.example/2"), "new", Some(hour_ago)),
        ];
        let url = "https://daily.example/rss";
        let (events, _, _) = events(rss(&doc), url, &position, &mut filter, &tags, now);
        assert_eq!(ids(&events), ["new"]);
        let Event::Post(p) = &events[0] else {
            unreachable!()
        };
        assert!(p.id.starts_with("feed:daily.example/"), "{}", p.id);
    }

    /// An RSS 1.0 document (whose items have no id) listing `(link, title)` items.
    fn rdf(items: &[(&str, &str)]) -> feed_rs::model::Feed {
        let items: String = items
            .iter()
            .map(|(link, title)| {
                format!(
                    r#"<item rdf:about="{link}"><title>{title}</title><link>{link}</link></item>"#
                )
            })
            .collect();
        let doc = format!(
            r#"<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://news.example/"><title>Desk</title><link>https://news.example/</link></channel>{items}</rdf:RDF>"#
        );
        parser(Some("https://news.example/rss"))
            .parse(doc.as_bytes())
            .unwrap()
    }

    /// An entry without an id was named by its link and its title together: an edited
    /// headline came back as a new post.
    #[test]
    fn an_entry_without_an_id_keeps_its_post_when_its_title_is_edited() {
        let (tags, mut filter) = untagged(100);
        let url = "https://news.example/rss";
        let link = "https://news.example/2026/11/recall";
        let now = Utc::now();
        let (first, _, position) = events(
            rdf(&[(link, "Pulse Buds recall")]),
            url,
            &Position::default(),
            &mut filter,
            &tags,
            now,
        );
        assert_eq!(ids(&first), ["Pulse Buds recall"]);
        let Event::Post(p) = &first[0] else {
            unreachable!()
        };
        assert_eq!(p.id, format!("feed:{link}"));
        let edited = rdf(&[(link, "Pulse Buds recall widened to all colours")]);
        let (second, _, _) = events(edited, url, &position, &mut filter, &tags, now);
        assert!(second.is_empty(), "{:?}", ids(&second));
    }

    /// A feed linking every item to one page: its entries are told apart by title, as before.
    #[test]
    fn entries_without_an_id_that_share_a_link_stay_apart() {
        let front = "https://news.example/";
        let doc = rdf(&[
            (front, "one"),
            (front, "two"),
            ("https://news.example/3", "three"),
        ]);
        let posts = first_poll(doc, "https://news.example/rss");
        assert_eq!(ids(&posts), ["one", "two", "three"]);
    }

    /// Positions stored when entries without an id were named by link and title hold those
    /// names' digests: the entries they had handled are not sent again under their new names,
    /// nor those whose link the feed writes relative.
    #[test]
    fn an_entry_handled_before_it_was_named_by_its_link_is_not_sent_again() {
        let (tags, mut filter) = untagged(100);
        let url = "https://news.example/rss";
        let doc = rdf(&[
            ("https://news.example/1", "handled"),
            ("/2", "handled, linked relative"),
            ("https://news.example/3", "new"),
        ]);
        // What the earlier version named an entry, from the link as the feed wrote it.
        let earlier = |index: usize, written: &str| {
            let entry = &doc.entries[index];
            let link = feed_rs::model::Link {
                href: written.into(),
                ..entry.links[0].clone()
            };
            let id = feed_rs::parser::generate_id_from_link_and_title(&link, &entry.title);
            digest64(&hashed_id(url, &id, ""))
        };
        let position = Position {
            newest: None,
            seen: vec![earlier(0, "https://news.example/1"), earlier(1, "/2")],
        };
        let (posts, _, next) = events(doc, url, &position, &mut filter, &tags, Utc::now());
        assert_eq!(ids(&posts), ["new"]);
        assert!(
            !next.seen.contains(&position.seen[0]),
            "named anew from now on"
        );
    }
}
