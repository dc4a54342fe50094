//! Reddit listings to Pulse posts. A listing is `{"kind": "Listing", "data": {"children":
//! [{"kind": "t3" | "t1", "data": {...}}]}}`; a link (`t3`, a submission) and a comment (`t1`)
//! both become posts, with the thing's fullname as id (`reddit:t3_abc`), the comment's parent
//! (`parent_id`, a link or a comment) as parent, the score and comment count as captured
//! metrics, and `r/<subreddit>` as channel unless the source sets one. Reddit does not give
//! follower counts in listings; they are sent as 0.
//!
//! What was handled is remembered by the things' names, not only by their times: a thing a
//! moderator approves from the queue (the spam filter, AutoModerator, Crowd Control) enters
//! the listing with its own, older creation time, after newer ones were handled.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::models::bounded::First;
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
    /// Each read on its own, so one odd thing does not lose the listing; kept as written, not
    /// as a tree of values (a 32 MiB listing of small objects was 3 GB of them), and a full
    /// listing's worth at most.
    #[serde(default)]
    children: First<Box<RawValue>, LISTING_SIZE>,
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
    /// Where the listing stands after them.
    pub position: Position,
    /// Every thing of a full listing was new: older new ones may have been missed.
    pub overflowed: bool,
}

/// Things in a full listing.
pub const LISTING_SIZE: usize = 100;

/// Names remembered per listing: ten full listings of new things. The names of the things
/// still listed are kept first, so no thing listed is forgotten while it is listed.
pub const MAX_SEEN: usize = 1_000;

/// How far before the position a thing not handled yet is still sent (seconds): a thing
/// approved later than that, or one older that comes back, is taken as handled.
pub const LOOKBACK_SECS: f64 = 86_400.0;

/// Where a listing stands between polls (and across restarts, stored with the events).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct Position {
    /// The newest creation time handled (Unix seconds), never ahead of the time it was read.
    pub newest: f64,
    /// The names of the things handled that were created within [`LOOKBACK_SECS`] of
    /// `newest`, the last listed first, [`MAX_SEEN`] at most; empty in a position stored
    /// before they were kept (then `newest` alone decides, as it did).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<String>,
}

/// A position as stored: the time alone, as it was stored before names were kept, or whole.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Time(f64),
    Whole {
        newest: f64,
        #[serde(default)]
        seen: Vec<String>,
    },
}

impl From<Stored> for Position {
    fn from(stored: Stored) -> Position {
        match stored {
            Stored::Time(newest) => Position {
                newest,
                seen: Vec::new(),
            },
            Stored::Whole { newest, seen } => Position { newest, seen },
        }
    }
}

/// The events of a listing's things not handled at `position`, oldest first: those created
/// after it, and those not seen that were created within [`LOOKBACK_SECS`] before it.
pub fn events(
    listing: Listing,
    position: &Position,
    filter: &mut TextFilter,
    tags: &Tags,
    now: DateTime<Utc>,
) -> Read {
    let children = listing.data.children.len();
    let now_secs = now.timestamp() as f64;
    // A position stored while a thing dated ahead could move it is brought back to now.
    let after = position.newest.min(now_secs);
    let seen: HashSet<&str> = position.seen.iter().map(String::as_str).collect();
    let mut skipped = Vec::new();
    let parsed: Vec<Child> = listing
        .data
        .children
        .into_inner()
        .into_iter()
        .filter_map(|raw| match serde_json::from_str::<Child>(raw.get()) {
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
    let listed: Vec<(String, f64)> = parsed
        .iter()
        .map(|c| (c.data.name.clone(), c.data.created_utc))
        .collect();
    let mut things: Vec<Child> = parsed
        .into_iter()
        .filter(|c| !handled(&c.data, after, &seen))
        .collect();
    things.sort_by(|a, b| a.data.created_utc.total_cmp(&b.data.created_utc));
    let mut newest = after;
    let mut out = Vec::new();
    for child in things {
        let t = child.data;
        // A thing dated ahead of now does not move the position past what comes next.
        if t.created_utc <= now_secs {
            newest = newest.max(t.created_utc);
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
        position: Position {
            newest,
            seen: remembered(&listed, newest, &position.seen),
        },
        overflowed,
    }
}

/// Whether thing `t` was handled at a position at `after` that saw `seen`. A position
/// stored without names tells by time alone, as it did (the things of its own second are
/// read again, and stored once).
fn handled(t: &Thing, after: f64, seen: &HashSet<&str>) -> bool {
    if seen.is_empty() {
        t.created_utc < after
    } else {
        seen.contains(t.name.as_str()) || t.created_utc < after - LOOKBACK_SECS
    }
}

/// The names remembered at a position at `newest`: every thing of the listing (each was
/// handled now or before) created within [`LOOKBACK_SECS`] of it, then the names seen
/// before, [`MAX_SEEN`] at most. Older things are told apart by time.
fn remembered(listed: &[(String, f64)], newest: f64, before: &[String]) -> Vec<String> {
    let bound = newest - LOOKBACK_SECS;
    // Those listed older than that are not kept from before either.
    let mut kept: HashSet<&str> = listed
        .iter()
        .filter(|(_, created)| *created < bound)
        .map(|(name, _)| name.as_str())
        .collect();
    listed
        .iter()
        .filter(|(_, created)| *created >= bound)
        .map(|(name, _)| name)
        .chain(before)
        .filter(|name| kept.insert(name.as_str()))
        .take(MAX_SEEN)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::posts;

    /// A position at `newest` without names, as stored before they were kept.
    fn at(newest: f64) -> Position {
        Position {
            newest,
            seen: Vec::new(),
        }
    }

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
        let read = events(listing, &at(1763599999.0), &mut filter, &tags, Utc::now());
        assert_eq!(read.skipped, ["deleted"]);
        assert_eq!(read.position.newest, 1763600300.0);
        assert!(!read.overflowed);
        let posts = posts(&read.events);
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
        let read = events(listing, &at(100.0), &mut filter, &tags, now);
        let mut skipped = read.skipped.clone();
        skipped.sort_unstable();
        assert_eq!(skipped, ["deleted", "malformed"]);
        let ids: Vec<&str> = posts(&read.events)
            .into_iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["reddit:t3_null", "reddit:t1_future"],
            "a thing at the position itself is read"
        );
        assert_eq!(
            read.position.newest, 100.0,
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
        let read = events(again, &read.position, &mut filter, &tags, now);
        assert_eq!(read.events.len(), 1);
        // A position stored ahead of now is brought back to it.
        let stored_ahead = events(
            serde_json::from_str(r#"{"kind":"Listing","data":{"children":[]}}"#).unwrap(),
            &at(ahead as f64),
            &mut filter,
            &tags,
            now,
        );
        assert_eq!(stored_ahead.position.newest, now.timestamp() as f64);
    }

    /// A listing is read a hundred things at most: 10,000 small objects were each built into a
    /// tree of values, about a hundred times the bytes they came in.
    #[test]
    fn a_listing_keeps_a_full_listings_worth_of_things() {
        let doc = format!(
            r#"{{"kind":"Listing","data":{{"children":[{}]}}}}"#,
            vec![r#"{"":0}"#; 10_000].join(",")
        );
        let listing: Listing = serde_json::from_str(&doc).unwrap();
        let mut filter = TextFilter::new(Default::default(), &[], 10);
        let tags = Tags {
            product: None,
            channel: None,
        };
        let read = events(listing, &at(0.0), &mut filter, &tags, Utc::now());
        assert_eq!(read.skipped.len(), LISTING_SIZE, "malformed things read");
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
            events(listing(things), &at(100.0), &mut filter, &tags, Utc::now()).overflowed
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

    fn untagged() -> (Tags, TextFilter) {
        let tags = Tags {
            product: None,
            channel: None,
        };
        (tags, TextFilter::new(Default::default(), &[], 10))
    }

    fn link(name: &str, created_utc: f64) -> String {
        format!(
            r#"{{"kind":"t3","data":{{"name":"{name}","title":"about {name}","created_utc":{created_utc},"subreddit":"x"}}}}"#
        )
    }

    fn listing_of(things: &[String]) -> Listing {
        serde_json::from_str(&format!(
            r#"{{"kind":"Listing","data":{{"children":[{}]}}}}"#,
            things.join(",")
        ))
        .unwrap()
    }

    fn ids(read: &Read) -> Vec<&str> {
        posts(&read.events)
            .into_iter()
            .map(|p| p.id.as_str())
            .collect()
    }

    /// A thing a moderator approved from the queue enters the listing with its own time,
    /// before one already handled: it was taken as handled by its time, and lost without a
    /// gap.
    #[test]
    fn a_thing_approved_after_a_newer_one_was_handled_is_sent_once() {
        let (tags, mut filter) = untagged();
        let now = Utc::now();
        let (b, a) = (link("t3_b", 1000.0), link("t3_a", 990.0));
        let first = events(
            listing_of(std::slice::from_ref(&b)),
            &Position::default(),
            &mut filter,
            &tags,
            now,
        );
        assert_eq!(ids(&first), ["reddit:t3_b"]);
        assert_eq!(first.position.newest, 1000.0);
        let both = [b.clone(), a];
        let second = events(listing_of(&both), &first.position, &mut filter, &tags, now);
        assert_eq!(ids(&second), ["reddit:t3_a"]);
        assert_eq!(second.position.newest, 1000.0, "the position stays");
        assert!(!second.overflowed);
        let third = events(listing_of(&both), &second.position, &mut filter, &tags, now);
        assert!(ids(&third).is_empty(), "{:?}", ids(&third));
        // Across a restart: what was handled is stored with the position.
        let stored = serde_json::to_string(&second.position).unwrap();
        let restored: Position = serde_json::from_str(&stored).unwrap();
        assert_eq!(restored, second.position);
        let again = events(listing_of(&both), &restored, &mut filter, &tags, now);
        assert!(ids(&again).is_empty());
        // Older than the look-back, a thing that appears is taken as handled.
        let old = link("t3_old", 1000.0 - LOOKBACK_SECS - 1.0);
        let late = events(
            listing_of(&[b, old]),
            &first.position,
            &mut filter,
            &tags,
            now,
        );
        assert!(ids(&late).is_empty());
    }

    #[test]
    fn a_position_stored_as_a_time_alone_is_read_and_handled_things_are_not_sent_again() {
        let stored: std::collections::BTreeMap<String, Position> =
            serde_json::from_str(r#"{"/r/x/new":1000.0,"/r/x/comments":990}"#).unwrap();
        assert_eq!(stored["/r/x/new"], at(1000.0));
        assert_eq!(stored["/r/x/comments"], at(990.0));
        let (tags, mut filter) = untagged();
        let now = Utc::now();
        let listed = [link("t3_b", 1000.0), link("t3_a", 990.0)];
        let first = events(listing_of(&listed), &at(1000.0), &mut filter, &tags, now);
        assert_eq!(
            ids(&first),
            ["reddit:t3_b"],
            "by time, as before: its own second again"
        );
        let next = events(
            listing_of(&listed),
            &first.position,
            &mut filter,
            &tags,
            now,
        );
        assert!(ids(&next).is_empty(), "{:?}", ids(&next));
        assert!(!serde_json::to_string(&first.position)
            .unwrap()
            .starts_with("1000"));
    }

    #[test]
    fn the_names_remembered_stay_bounded_over_many_polls() {
        let (tags, mut filter) = untagged();
        let now = Utc::now();
        let mut position = Position::default();
        let mut made = Vec::new();
        for poll in 0..40 {
            // Half of each listing is new; the other half was listed before.
            made.extend((0..LISTING_SIZE / 2).map(|i| {
                let n = poll * LISTING_SIZE / 2 + i;
                link(&format!("t3_{n}"), 1000.0 + n as f64)
            }));
            let listed = &made[made.len().saturating_sub(LISTING_SIZE)..];
            let read = events(listing_of(listed), &position, &mut filter, &tags, now);
            assert_eq!(read.events.len(), LISTING_SIZE / 2, "poll {poll}");
            position = read.position;
            assert!(position.seen.len() <= MAX_SEEN);
        }
        assert_eq!(position.seen.len(), MAX_SEEN);
        let stored = serde_json::to_string(&position).unwrap();
        assert!(stored.len() < MAX_SEEN * 16, "{} bytes", stored.len());
    }
}
