//! Reddit listings to Pulse posts. A listing is `{"kind": "Listing", "data": {"children":
//! [{"kind": "t3" | "t1", "data": {...}}]}}`; a link (`t3`, a submission) and a comment (`t1`)
//! both become posts, with the thing's fullname as id (`reddit:t3_abc`), the comment's parent
//! (`parent_id`, a link or a comment) as parent, the score and comment count as captured
//! metrics, and `r/<subreddit>` as channel unless the source sets one. Reddit does not give
//! follower counts in listings; they are sent as 0.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::models::event::MAX_FUTURE_SKEW;
use crate::models::{Author, Event, Platform, Post, PostMetrics};
use crate::sources::filter::TextFilter;
use crate::sources::html;
use crate::sources::nullable::or_default;

#[derive(Deserialize)]
pub struct Listing {
    data: ListingData,
}

#[derive(Deserialize)]
struct ListingData {
    /// Each read on its own, so one odd thing does not lose the listing.
    #[serde(default)]
    children: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Child {
    kind: String,
    data: Thing,
}

#[derive(Deserialize)]
struct Thing {
    name: String,
    #[serde(default, deserialize_with = "or_default")]
    title: String,
    #[serde(default, deserialize_with = "or_default")]
    selftext: String,
    #[serde(default, deserialize_with = "or_default")]
    body: String,
    #[serde(default, deserialize_with = "or_default")]
    author: String,
    #[serde(default, deserialize_with = "or_default")]
    created_utc: f64,
    #[serde(default, deserialize_with = "or_default")]
    subreddit: String,
    #[serde(default, deserialize_with = "or_default")]
    permalink: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    score: i64,
    #[serde(default, deserialize_with = "or_default")]
    num_comments: u64,
    /// Set when moderators, the author or Reddit removed it; its title stays in listings.
    #[serde(default)]
    removed_by_category: Option<String>,
}

pub struct Tags {
    pub product: Option<String>,
    pub channel: Option<String>,
}

/// What one listing gave.
pub struct Read {
    pub events: Vec<Event>,
    /// Reasons of the things left out.
    pub skipped: Vec<&'static str>,
    /// The newest creation time seen (Unix seconds).
    pub newest: f64,
    /// Every thing of a full listing was new: older new ones may have been missed.
    pub overflowed: bool,
}

/// Things in a full listing.
pub const LISTING_SIZE: usize = 100;

/// The events of a listing's things newer than `after` (Unix seconds), oldest first.
pub fn events(
    listing: Listing,
    after: f64,
    filter: &mut TextFilter,
    tags: &Tags,
    now: DateTime<Utc>,
) -> Read {
    let total = listing.data.children.len();
    let mut skipped = Vec::new();
    // At `after` itself too: two things of the same second may have come in two polls (the
    // one sent again is stored once).
    let mut things: Vec<Child> = listing
        .data
        .children
        .into_iter()
        .filter_map(|value| match serde_json::from_value::<Child>(value) {
            Ok(child) => Some(child),
            Err(_) => {
                skipped.push("malformed");
                None
            }
        })
        .filter(|c| c.data.created_utc >= after)
        .collect();
    let overflowed = after > 0.0 && total >= LISTING_SIZE && things.len() == total;
    things.sort_by(|a, b| a.data.created_utc.total_cmp(&b.data.created_utc));
    let mut newest = after;
    let mut out = Vec::new();
    // A thing dated ahead of now does not move the position past what comes next.
    let latest_plausible = (now + MAX_FUTURE_SKEW / 2).timestamp() as f64;
    for child in things {
        let t = child.data;
        newest = newest.max(t.created_utc.min(latest_plausible));
        if t.removed_by_category.is_some() {
            skipped.push("deleted");
            continue;
        }
        let text = match child.kind.as_str() {
            "t3" if t.selftext.trim().is_empty() => t.title.clone(),
            "t3" => format!("{}\n{}", t.title, t.selftext),
            "t1" => t.body.clone(),
            _ => {
                skipped.push("unsupported");
                continue;
            }
        };
        // Listings are asked for with `raw_json=1`, but a listing recorded without it (a
        // replay, a proxy's cache) escapes &, < and >: decoded either way.
        let text = html::decode_entities(&text);
        if text.trim().is_empty() || matches!(text.trim(), "[deleted]" | "[removed]") {
            skipped.push(if text.trim().is_empty() {
                "empty_text"
            } else {
                "deleted"
            });
            continue;
        }
        let id = format!("reddit:{}", t.name);
        if !filter.keeps_post(&id, &text, &[]) {
            skipped.push("filtered");
            continue;
        }
        let created_at = DateTime::from_timestamp_micros((t.created_utc * 1e6) as i64)
            .filter(|c| *c <= now + MAX_FUTURE_SKEW / 2)
            .unwrap_or(now);
        out.push(Event::Post(Post {
            id,
            platform: Platform::Reddit,
            author: Author {
                id: if t.author.is_empty() {
                    "[deleted]".into()
                } else {
                    t.author
                },
                followers: 0,
            },
            text,
            created_at,
            lang: None,
            geo: None,
            product: tags.product.clone(),
            channel: Some(
                tags.channel
                    .clone()
                    .unwrap_or_else(|| format!("r/{}", t.subreddit)),
            ),
            parent_id: t.parent_id.map(|p| format!("reddit:{p}")),
            url: (!t.permalink.is_empty())
                .then(|| format!("https://www.reddit.com{}", t.permalink)),
            metrics: Some(PostMetrics {
                likes: u64::try_from(t.score).unwrap_or(0),
                shares: 0,
                comments: t.num_comments,
                views: 0,
            }),
        }));
    }
    Read {
        events: out,
        skipped,
        newest,
        overflowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_comments_become_posts_oldest_first() {
        let listing: Listing = serde_json::from_str(r#"{"kind":"Listing","data":{"after":null,"children":[
            {"kind":"t1","data":{"name":"t1_c2","body":"Same here &amp; support ignores me","author":"bo","created_utc":1763600200.0,"subreddit":"pulse","permalink":"/r/pulse/comments/a1/x/c2/","parent_id":"t3_a1","score":4}},
            {"kind":"t3","data":{"name":"t3_a1","title":"Buds died","selftext":"","author":"al","created_utc":1763600100.0,"subreddit":"pulse","permalink":"/r/pulse/comments/a1/x/","score":12,"num_comments":3}},
            {"kind":"t3","data":{"name":"t3_old","title":"Seen before","author":"cy","created_utc":1763500000.0,"subreddit":"pulse"}},
            {"kind":"t1","data":{"name":"t1_gone","body":"[removed]","author":"","created_utc":1763600300.0,"subreddit":"pulse"}}
        ]}}"#).unwrap();
        let tags = Tags {
            product: None,
            channel: None,
        };
        let mut filter = TextFilter::new(Default::default(), &[], 10);
        let read = events(listing, 1763599999.0, &mut filter, &tags, Utc::now());
        assert_eq!(read.skipped, ["deleted"]);
        assert_eq!(read.newest, 1763600300.0);
        assert!(!read.overflowed);
        let posts: Vec<&Post> = read
            .events
            .iter()
            .map(|e| match e {
                Event::Post(p) => p,
                _ => panic!("not a post"),
            })
            .collect();
        assert_eq!(posts[0].id, "reddit:t3_a1");
        assert_eq!(posts[0].metrics.unwrap().likes, 12);
        assert_eq!(posts[1].text, "Same here & support ignores me");
        assert_eq!(posts[1].parent_id.as_deref(), Some("reddit:t3_a1"));
        assert_eq!(posts[1].channel.as_deref(), Some("r/pulse"));
        assert_eq!(
            posts[1].url.as_deref(),
            Some("https://www.reddit.com/r/pulse/comments/a1/x/c2/")
        );
    }

    #[test]
    fn removed_odd_and_future_things_cost_only_themselves() {
        let now = Utc::now();
        let ahead = (now + chrono::TimeDelta::days(365 * 70)).timestamp();
        let listing: Listing = serde_json::from_str(&format!(r#"{{"kind":"Listing","data":{{"children":[
            {{"kind":"t3","data":{{"name":"t3_gone","title":"Buds died","selftext":"[removed]","removed_by_category":"moderator","author":"al","created_utc":100.0,"subreddit":"pulse"}}}},
            {{"kind":"t3","data":{{"name":"t3_null","title":"Nulls","selftext":null,"author":null,"score":null,"created_utc":100.0,"subreddit":"pulse"}}}},
            {{"kind":"t3","data":{{"title":"no name","created_utc":101.0}}}},
            {{"kind":"t1","data":{{"name":"t1_future","body":"from the future","author":"x","created_utc":{ahead}.0,"subreddit":"pulse"}}}}
        ]}}}}"#)).unwrap();
        let tags = Tags {
            product: None,
            channel: None,
        };
        let mut filter = TextFilter::new(Default::default(), &[], 10);
        let read = events(listing, 100.0, &mut filter, &tags, now);
        let mut skipped = read.skipped.clone();
        skipped.sort_unstable();
        assert_eq!(skipped, ["deleted", "malformed"]);
        let ids: Vec<&str> = read
            .events
            .iter()
            .map(|e| match e {
                Event::Post(p) => p.id.as_str(),
                _ => panic!("not a post"),
            })
            .collect();
        assert_eq!(
            ids,
            ["reddit:t3_null", "reddit:t1_future"],
            "a thing at the position itself is read again"
        );
        assert!(
            read.newest <= (now + MAX_FUTURE_SKEW).timestamp() as f64,
            "the position stays within reach of what comes next: {}",
            read.newest
        );
    }
}
