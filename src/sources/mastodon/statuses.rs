//! Mastodon statuses to Pulse events. A status (the `Status` entity of the REST and streaming
//! APIs) becomes a post; a boost, which arrives as a status whose `reblog` holds the boosted
//! one, becomes a `share` of the boosted status by the booster (with their follower count).
//!
//! Ids are the instance's host and its status id (`mastodon.social:1093486...`): replies name
//! their parent by the instance's id (`in_reply_to_id`), so parents and boosts resolve on the
//! same instance. The same status seen through two instances has two ids. A boost's share is
//! the host, the booster's account id and the boosted status's id
//! (`mastodon.social:boost:9:1093486...`): one per account and status.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::models::event::MAX_FUTURE_SKEW;
use crate::models::{
    Author, Deletion, Engagement, EngagementKind, Event, Platform, Post, PostMetrics,
};
use crate::sources::filter::TextFilter;
use crate::sources::html;

#[derive(Debug, Deserialize)]
pub struct Status {
    pub id: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    in_reply_to_id: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    spoiler_text: String,
    #[serde(default)]
    replies_count: u64,
    #[serde(default)]
    reblogs_count: u64,
    #[serde(default)]
    favourites_count: u64,
    #[serde(default)]
    reblog: Option<Box<Status>>,
    account: Account,
}

#[derive(Debug, Deserialize)]
struct Account {
    #[serde(default)]
    acct: String,
    #[serde(default)]
    id: String,
    /// Negative where the instance hides it (glitch-soc sends -1): unknown, like absent.
    #[serde(default)]
    followers_count: Option<i64>,
}

impl Account {
    fn followers(&self) -> Option<u64> {
        self.followers_count.and_then(|n| u64::try_from(n).ok())
    }
}

/// What a status gave: events (a boost also gives the boosted status as a post, so the share
/// has its post), or why nothing.
pub enum Mapped {
    Events(Vec<Event>),
    Skipped(&'static str),
}

/// Tags every post of the source gets.
pub struct Tags {
    pub host: String,
    pub product: Option<String>,
    pub channel: Option<String>,
}

pub fn map(status: Status, filter: &mut TextFilter, tags: &Tags, now: DateTime<Utc>) -> Mapped {
    match status.reblog {
        Some(boosted) => {
            let booster = status.account;
            let at = plausible(status.created_at, now);
            let boosted_id = format!("{}:{}", tags.host, boosted.id);
            // One share per account and status: a boost undone and done again is a status
            // of a new id each time, and by its id one account looping on it counted each.
            let account = [&booster.id, &booster.acct]
                .into_iter()
                .find(|a| !a.is_empty())
                .map_or_else(|| format!("status-{}", status.id), |a| a.to_string());
            let share_id = format!("{}:boost:{account}:{}", tags.host, boosted.id);
            let mut events = Vec::new();
            if let Mapped::Events(post) = post(*boosted, filter, tags, now) {
                events.extend(post);
            }
            if !filter.keeps_engagement(&boosted_id) {
                return Mapped::Skipped("filtered");
            }
            events.push(Event::Engagement(Engagement {
                id: Some(share_id),
                post_id: boosted_id,
                kind: EngagementKind::Share,
                at,
                actor_followers: booster.followers(),
                via: None,
                count: None,
            }));
            Mapped::Events(events)
        }
        None => post(status, filter, tags, now),
    }
}

fn post(status: Status, filter: &mut TextFilter, tags: &Tags, now: DateTime<Utc>) -> Mapped {
    let mut text = html::to_text(&status.content);
    if !status.spoiler_text.trim().is_empty() {
        text = format!("{}\n{text}", status.spoiler_text.trim());
    }
    if text.trim().is_empty() {
        return Mapped::Skipped("empty_text");
    }
    let id = format!("{}:{}", tags.host, status.id);
    let langs: Vec<String> = status.language.iter().cloned().collect();
    if !filter.keeps_post(&id, &text, &langs) {
        return Mapped::Skipped("filtered");
    }
    let followers = status.account.followers().unwrap_or(0);
    let author = if status.account.acct.is_empty() {
        format!("{}:{}", tags.host, status.account.id)
    } else if status.account.acct.contains('@') {
        status.account.acct
    } else {
        format!("{}@{}", status.account.acct, tags.host)
    };
    Mapped::Events(vec![Event::Post(Post {
        id,
        platform: Platform::Mastodon,
        author: Author {
            id: author,
            followers,
        },
        text,
        created_at: plausible(status.created_at, now),
        lang: status.language,
        geo: None,
        product: tags.product.clone(),
        channel: tags.channel.clone(),
        parent_id: status.in_reply_to_id.map(|p| format!("{}:{p}", tags.host)),
        url: status.url.or(status.uri),
        metrics: Some(PostMetrics {
            likes: status.favourites_count,
            shares: status.reblogs_count,
            comments: status.replies_count,
            views: 0,
        }),
    })])
}

/// The deletion of status `id` (a stream's `delete` payload, quoted or not), or why none:
/// with filters, only that of a status kept (see [`TextFilter::keeps_deletion`]).
pub fn deletion(id: &str, filter: &TextFilter, tags: &Tags, now: DateTime<Utc>) -> Mapped {
    let id = id.trim().trim_matches('"');
    if id.is_empty() {
        return Mapped::Skipped("malformed");
    }
    let post_id = format!("{}:{id}", tags.host);
    if !filter.keeps_deletion(&post_id) {
        return Mapped::Skipped("filtered");
    }
    Mapped::Events(vec![Event::Delete(Deletion { post_id, at: now })])
}

/// The status's time unless it is missing or ahead of the present (remote servers' clocks).
fn plausible(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match at {
        Some(t) if t <= now + MAX_FUTURE_SKEW / 2 && t >= DateTime::UNIX_EPOCH => t,
        _ => now,
    }
}

/// Where a status id stands among ids: snowflakes as numbers, anything else as text after
/// them, shorter text first. One total order for sorting a page and for the cursor: ids of
/// both kinds on one page (an instance that changed software) compared pairwise as numbers
/// or as text would form cycles, which `sort_by` may panic on.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdOrder<'a> {
    Number(u128),
    Text(usize, &'a str),
}

pub fn id_order(id: &str) -> IdOrder<'_> {
    match id.parse::<u128>() {
        Ok(n) => IdOrder::Number(n),
        Err(_) => IdOrder::Text(id.len(), id),
    }
}

/// Whether status id `a` comes after `b` in [`id_order`].
pub fn newer(a: &str, b: &str) -> bool {
    id_order(a) > id_order(b)
}

/// Puts a page of statuses in the order they are handled, so the cursor moves forward.
pub fn oldest_first(statuses: &mut [Status]) {
    statuses.sort_by(|a, b| id_order(&a.id).cmp(&id_order(&b.id)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Tags {
        Tags {
            host: "mastodon.example".into(),
            product: None,
            channel: Some("social".into()),
        }
    }

    const STATUS: &str = r#"{"id":"109348699525106378","created_at":"2022-11-15T16:12:20.310Z","in_reply_to_id":"109348674754176227","language":"en","uri":"https://mastodon.example/users/greg/statuses/109348699525106378","url":"https://mastodon.example/@greg/109348699525106378","replies_count":1,"reblogs_count":2,"favourites_count":3,"content":"<p>NetNewsWire doesn&#39;t show any image, boo!</p>","spoiler_text":"","reblog":null,"account":{"id":"30437","username":"greg","acct":"greg","followers_count":2307}}"#;

    /// The events of the status `json`, read at `now` with no filter.
    fn mapped(json: &str, now: chrono::DateTime<Utc>) -> Vec<Event> {
        let status: Status = serde_json::from_str(json).expect("a status");
        match map(
            status,
            &mut TextFilter::new(Default::default(), &[], 10),
            &tags(),
            now,
        ) {
            Mapped::Events(events) => events,
            Mapped::Skipped(reason) => panic!("skipped: {reason}"),
        }
    }

    #[test]
    fn a_status_becomes_a_post_on_its_instance() {
        let now = Utc::now();
        let events = mapped(STATUS, now);
        let Event::Post(p) = &events[0] else {
            panic!("not a post")
        };
        assert_eq!(p.id, "mastodon.example:109348699525106378");
        assert_eq!(p.text, "NetNewsWire doesn't show any image, boo!");
        assert_eq!(p.author.id, "greg@mastodon.example");
        assert_eq!(p.author.followers, 2307);
        assert_eq!(
            p.parent_id.as_deref(),
            Some("mastodon.example:109348674754176227")
        );
        assert_eq!(p.metrics.unwrap().shares, 2);
        assert!(events[0].validate_at(now).is_ok());
    }

    #[test]
    fn a_boost_is_a_share_of_the_boosted_status() {
        let boost = format!(
            r#"{{"id":"200","created_at":"2022-11-15T16:20:00Z","content":"","reblog":{STATUS},"account":{{"id":"9","acct":"ann@other.example","followers_count":40}}}}"#
        );
        let events = mapped(&boost, Utc::now());
        assert_eq!(events.len(), 2);
        let Event::Engagement(e) = &events[1] else {
            panic!("not an engagement")
        };
        assert_eq!(e.kind, EngagementKind::Share);
        assert_eq!(
            e.id.as_deref(),
            Some("mastodon.example:boost:9:109348699525106378")
        );
        assert_eq!(e.post_id, "mastodon.example:109348699525106378");
        assert_eq!(e.actor_followers, Some(40));
        assert!(events[1].validate_at(Utc::now()).is_ok());
        // Undone and boosted again, it is a status of a new id: the same share. Another
        // account's boost is another.
        let again = boost.replace(r#""id":"200""#, r#""id":"201""#);
        let other = boost.replace(r#""id":"9""#, r#""id":"10""#);
        let share_id = |json: &str| match &mapped(json, Utc::now())[1] {
            Event::Engagement(e) => e.id.clone().unwrap(),
            other => panic!("not an engagement: {other:?}"),
        };
        assert_eq!(share_id(&again), share_id(&boost));
        assert_ne!(share_id(&other), share_id(&boost));
    }

    /// A public timeline with keywords forwarded every deletion on the instance, each
    /// stored for a status it never kept.
    #[test]
    fn with_keywords_only_the_deletion_of_a_kept_status_is_forwarded() {
        let listening =
            crate::sources::filter::Listening::new(&["buds".into()], None, None).expect("keywords");
        let mut filter = TextFilter::new(listening, &[], 10);
        let now = Utc::now();
        let kept = STATUS.replace("any image", "my buds");
        let never = "109348699525106379";
        assert!(matches!(
            deletion(never, &filter, &tags(), now),
            Mapped::Skipped("filtered")
        ));
        let status: Status = serde_json::from_str(&kept).unwrap();
        assert!(matches!(
            map(status, &mut filter, &tags(), now),
            Mapped::Events(_)
        ));
        let Mapped::Events(events) = deletion("\"109348699525106378\"", &filter, &tags(), now)
        else {
            panic!("not forwarded")
        };
        let [Event::Delete(d)] = events.as_slice() else {
            panic!("not a deletion: {events:?}")
        };
        assert_eq!(d.post_id, "mastodon.example:109348699525106378");
        assert!(matches!(
            deletion(" ", &filter, &tags(), now),
            Mapped::Skipped("malformed")
        ));
        let open = TextFilter::new(Default::default(), &[], 10);
        assert!(
            matches!(deletion(never, &open, &tags(), now), Mapped::Events(_)),
            "without filters every deletion passes"
        );
    }

    #[test]
    fn ids_order_as_numbers() {
        assert!(newer("109348699525106378", "99999999999999999"));
        assert!(!newer("1", "2"));
    }

    #[test]
    fn ids_of_both_kinds_sort_in_one_total_order() {
        let ids = ["zz", "10", "009"].repeat(21);
        let mut page: Vec<Status> = ids
            .iter()
            .map(|id| serde_json::from_value(serde_json::json!({"id": id, "account": {}})).unwrap())
            .collect();
        oldest_first(&mut page);
        let sorted: Vec<&str> = page.iter().map(|s| s.id.as_str()).collect();
        let expected = [["009"; 21], ["10"; 21], ["zz"; 21]].concat();
        assert_eq!(sorted, expected, "numbers as numbers, then text");
        let kinds = [
            "009",
            "9",
            "10",
            "zz",
            "a",
            "abc",
            "340282366920938463463374607431768211456",
        ];
        for a in kinds {
            assert!(!newer(a, a), "{a}");
            for b in kinds {
                assert!(!(newer(a, b) && newer(b, a)), "{a} {b}");
                for c in kinds {
                    if newer(a, b) && newer(b, c) {
                        assert!(newer(a, c), "{a} {b} {c}");
                    }
                }
            }
        }
        assert!(!newer("009", "9") && !newer("9", "009"), "the same number");
        assert!(newer("zz", "10") && newer("abc", "zz") && newer("10", "009"));
    }

    #[test]
    fn a_hidden_follower_count_is_unknown_not_a_lost_status() {
        let hidden = format!(
            r#"{{"id":"201","created_at":"2022-11-15T16:20:00Z","content":"","reblog":{},"account":{{"id":"9","acct":"ann@infosec.example","followers_count":-1}}}}"#,
            STATUS.replace(r#""followers_count":2307"#, r#""followers_count":-1"#)
        );
        let events = mapped(&hidden, Utc::now());
        let (Event::Post(p), Event::Engagement(e)) = (&events[0], &events[1]) else {
            panic!("not a post and a share")
        };
        assert_eq!((p.author.followers, e.actor_followers), (0, None));
    }
}
