//! Feed entries (RSS 0.9x/1.0/2.0, Atom, JSON Feed, through `feed-rs`) to Pulse posts: the
//! entry's title and summary (or content) as text, channel `news` unless the source sets one,
//! the entry's author (else the feed's, else its title) as the author, the entry's link as
//! the URL.

use chrono::{DateTime, Utc};
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

/// The events of one fetched feed whose entries are newer than `newest` (all when `None`),
/// with the skipped entries' reasons, and the newest entry time seen.
pub fn events(
    feed: feed_rs::model::Feed,
    url: &str,
    newest: Option<DateTime<Utc>>,
    filter: &mut TextFilter,
    tags: &Tags,
    now: DateTime<Utc>,
) -> (Vec<Event>, Vec<&'static str>, Option<DateTime<Utc>>) {
    let author = feed
        .authors
        .first()
        .map(|p| p.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| feed.title.as_ref().map(|t| html::to_text(&t.content)))
        .filter(|t| !t.is_empty())
        // Shown to analysts, so without the credentials a feed URL can carry.
        .unwrap_or_else(|| crate::egress::redact_url(url));
    let feed_lang = feed.language.clone();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut latest = newest;
    for entry in feed.entries {
        let at = entry.published.or(entry.updated);
        if let (Some(at), Some(newest)) = (at, newest) {
            if at <= newest {
                continue;
            }
        }
        if let Some(at) = at {
            latest = Some(latest.map_or(at, |l| l.max(at)));
        }
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
        if text.trim().is_empty() {
            skipped.push("empty_text");
            continue;
        }
        text.truncate(prefix_chars(&text, tags.max_text_chars).len());
        let id = entry_id(url, &entry.id);
        let lang = entry.language.clone().or_else(|| feed_lang.clone());
        let langs: Vec<String> = lang.iter().cloned().collect();
        if !filter.keeps_post(&id, &text, &langs) {
            skipped.push("filtered");
            continue;
        }
        let created_at = match at {
            Some(t) if t <= now + MAX_FUTURE_SKEW / 2 && t >= DateTime::UNIX_EPOCH => t,
            _ => now,
        };
        out.push(Event::Post(Post {
            id,
            platform: Platform::Other,
            author: Author {
                id: entry
                    .authors
                    .first()
                    .map(|p| p.name.clone())
                    .filter(|n| !n.is_empty() && n.len() <= MAX_ID_BYTES)
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
            url: entry
                .links
                .first()
                .map(|l| l.href.clone())
                .filter(|h| h.len() <= 2_048),
            metrics: None,
        }));
    }
    (out, skipped, latest)
}

/// `feed:` and the entry's own id when it is short enough, else a digest of the feed URL and
/// the id (the same entry always gets the same id).
fn entry_id(url: &str, id: &str) -> String {
    if !id.is_empty() && id.len() <= MAX_ID_BYTES - 5 {
        return format!("feed:{id}");
    }
    let digest = Sha256::digest(format!("{url}\n{id}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("feed:{hex}")
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
            Some(newest),
            &mut filter,
            &tags,
            Utc::now(),
        );
        assert_eq!(events.len(), 1, "the old story was seen before");
        assert_eq!(skipped, ["empty_text"]);
        let Event::Post(p) = &events[0] else {
            panic!("not a post")
        };
        assert_eq!(p.id, "feed:https://news.example/recall");
        assert_eq!(p.text, "Pulse Buds recall\nBa", "cut at 20 characters");
        assert_eq!(p.channel.as_deref(), Some("news"));
        assert_eq!(p.author.id, "Gadget News");
        assert_eq!(p.lang.as_deref(), Some("en-us"));
        assert_eq!(latest.unwrap().to_rfc3339(), "2026-11-10T09:00:00+00:00");
        assert_eq!(entry_id("u", &"x".repeat(300)).len(), 5 + 32);
    }
}
