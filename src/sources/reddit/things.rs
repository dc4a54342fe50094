//! Reddit listings to Pulse posts. A listing is `{"kind": "Listing", "data": {"children":
//! [{"kind": "t3" | "t1", "data": {...}}]}}`; a link (`t3`, a submission) and a comment (`t1`)
//! both become posts, with the thing's fullname as id (`reddit:t3_abc`), the comment's parent
//! (`parent_id`, a link or a comment) as parent, the score and comment count as captured
//! metrics, and `r/<subreddit>` as channel unless the source sets one. Reddit does not give
//! follower counts in listings; they are sent as 0.

use std::collections::HashSet;

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
    /// The newest creation time handled (Unix seconds), never ahead of now.
    pub newest: f64,
    /// The names of the things handled that were created in that second.
    pub at_newest: HashSet<String>,
    /// Every thing of a full listing was new: older new ones may have been missed.
    pub overflowed: bool,
}

/// Things in a full listing.
pub const LISTING_SIZE: usize = 100;

/// The events of a listing's things created after `after` (Unix seconds), or in that second
/// and not among `at_after` (two things of one second can come in two polls), oldest first.
pub fn events(
    listing: Listing,
    after: f64,
    at_after: &HashSet<String>,
    filter: &mut TextFilter,
    tags: &Tags,
    now: DateTime<Utc>,
) -> Read {
    let children = listing.data.children.len();
    let now_secs = now.timestamp() as f64;
    // A position stored while a thing dated ahead could move it is brought back to now.
    let after = after.min(now_secs);
    let mut skipped = Vec::new();
    let parsed: Vec<Child> = listing
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
        .collect();
    let overflowed = after > 0.0
        && children >= LISTING_SIZE
        && parsed.iter().all(|c| c.data.created_utc > after);
    let mut things: Vec<Child> = parsed
        .into_iter()
        .filter(|c| {
            c.data.created_utc > after
                || (c.data.created_utc == after && !at_after.contains(&c.data.name))
        })
        .collect();
    things.sort_by(|a, b| a.data.created_utc.total_cmp(&b.data.created_utc));
    let mut newest = after;
    let mut at_newest = at_after.clone();
    let mut out = Vec::new();
    for child in things {
        let t = child.data;
        // A thing dated ahead of now does not move the position past what comes next.
        if t.created_utc <= now_secs {
            if t.created_utc > newest {
                newest = t.created_utc;
                at_newest.clear();
            }
            at_newest.insert(t.name.clone());
        }
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
        at_newest,
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
        let read = events(
            listing,
            1763599999.0,
            &HashSet::new(),
            &mut filter,
            &tags,
            Utc::now(),
        );
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
        let read = events(listing, 100.0, &HashSet::new(), &mut filter, &tags, now);
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
            "a thing at the position itself is read"
        );
        assert_eq!(
            read.newest, 100.0,
            "the thing from the future does not move it"
        );
        // The next poll: what was handled at that second is not sent again.
        let again: Listing = serde_json::from_str(
            r#"{"kind":"Listing","data":{"children":[
            {"kind":"t3","data":{"name":"t3_null","title":"Nulls","created_utc":100.0,"subreddit":"pulse"}},
            {"kind":"t3","data":{"name":"t3_late","title":"Same second, next poll","created_utc":100.0,"subreddit":"pulse"}}
        ]}}"#,
        )
        .unwrap();
        let read = events(again, 100.0, &read.at_newest, &mut filter, &tags, now);
        assert_eq!(read.events.len(), 1);
        // A position stored ahead of now is brought back to it.
        let stored_ahead = events(
            serde_json::from_str(r#"{"kind":"Listing","data":{"children":[]}}"#).unwrap(),
            ahead as f64,
            &HashSet::new(),
            &mut filter,
            &tags,
            now,
        );
        assert_eq!(stored_ahead.newest, now.timestamp() as f64);
    }

    #[test]
    fn a_full_listing_of_new_things_overflows_whatever_one_of_them_holds() {
        let listing = |things: Vec<String>| -> Listing {
            serde_json::from_str(&format!(
                r#"{{"kind":"Listing","data":{{"children":[{}]}}}}"#,
                things.join(",")
            ))
            .unwrap()
        };
        let thing = |i: usize, at: f64| {
            format!(
                r#"{{"kind":"t3","data":{{"name":"t3_{i}","title":"t {i}","created_utc":{at},"subreddit":"s"}}}}"#
            )
        };
        let tags = Tags {
            product: None,
            channel: None,
        };
        let mut filter = TextFilter::new(Default::default(), &[], 10);
        let mut read = |things: Vec<String>| {
            events(
                listing(things),
                100.0,
                &HashSet::new(),
                &mut filter,
                &tags,
                Utc::now(),
            )
            .overflowed
        };
        let new: Vec<String> = (0..LISTING_SIZE)
            .map(|i| thing(i, 101.0 + i as f64))
            .collect();
        assert!(read(new.clone()));
        let mut with_the_handled_one = new[1..].to_vec();
        with_the_handled_one.push(thing(999, 100.0));
        assert!(
            !read(with_the_handled_one),
            "one of them was at the position"
        );
        let mut with_an_odd_one = new[1..].to_vec();
        with_an_odd_one.push(r#"{"kind":"t3","data":{"title":"no name"}}"#.into());
        assert!(read(with_an_odd_one), "an unreadable thing hides nothing");
    }
}
