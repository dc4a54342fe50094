//! The budget of rollup keys: made-up labels past a dimension's keys of the day count under
//! `other`. Checked through a running server, and where a server's batching would hide it:
//! batches handed to the store's key admission as a producer's posts would make them.

use crate::common;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use common::secured::SecuredServer;
use common::*;
use pulse::db::rollup_keys::{KeyAdmission, PostKeys, ASKED_GROUPS, CAPPED};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

/// Posts with made-up labels made one rollup row each, which every aggregate read.
#[actix_rt::test]
async fn made_up_labels_beyond_the_days_keys_count_under_other() {
    let s = SecuredServer::start(|s| s.metrics.max_keys_per_dimension = 3).await;
    for i in 0..10 {
        let post = json!({
            "type": "post", "id": format!("label-{i}"), "platform": "twitter",
            "author": {"id": "a", "followers": 1}, "text": "what a day",
            "created_at": chrono::Utc::now().to_rfc3339(),
            "geo": {"city": format!("city-{i}")},
        });
        xadd_event(&s.env.redis().await, &s.env.stream, &post.to_string()).await;
    }
    assert!(s.env.stored(10, Duration::from_secs(60)).await);
    let cities = || async {
        let res = s
            .analyst("GET", "/api/v1/metrics/geo?window=1h", None)
            .await;
        posts_by_key(&res.json()["cities"])
    };
    let geo = cities().await;
    assert_eq!(geo.len(), 4, "{geo:?}");
    assert!(geo.contains(&("(other)".to_string(), 7)), "{geo:?}");
    assert_eq!(geo.iter().map(|(_, n)| n).sum::<i64>(), 10);

    // A deleted post leaves exactly the rows it was counted in.
    let other_post: String = s
        .env
        .pg()
        .await
        .scalar(
            "SELECT id FROM posts WHERE rollup_other & 1 <> 0 ORDER BY id LIMIT 1",
            &[],
        )
        .await;
    let deletion = json!({"type": "delete", "post_id": other_post,
        "at": chrono::Utc::now().to_rfc3339()});
    xadd_event(&s.env.redis().await, &s.env.stream, &deletion.to_string()).await;
    assert!(
        wait_until(Duration::from_secs(60), || async {
            cities().await.contains(&("(other)".to_string(), 6))
        })
        .await
    );
    let recount = s
        .count("SELECT count(*) FROM posts WHERE deleted_at IS NULL AND city IS NOT NULL")
        .await;
    let rolled = s
        .count("SELECT sum(posts)::int8 FROM metric_rollups WHERE dimension = 'city'")
        .await;
    assert_eq!(rolled, recount);
    let admitted = s
        .count("SELECT count(*) FROM rollup_keys WHERE dimension = 'city'")
        .await;
    assert_eq!(admitted, 3);
}

/// Noon of `day`, in UTC.
fn noon(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(12, 0, 0).expect("noon").and_utc()
}

/// One post per `(day, key)` of `named`, at noon that day, naming `key` in each of
/// `dimensions` (indexes in `CAPPED`) and nothing in the others.
fn posts_naming<'a>(named: &'a [(NaiveDate, String)], dimensions: &[usize]) -> Vec<PostKeys<'a>> {
    named
        .iter()
        .map(|(day, key)| {
            let mut keys = [None; 5];
            for d in dimensions {
                keys[*d] = Some(key.as_str());
            }
            PostKeys {
                created_at: noon(*day),
                keys,
            }
        })
        .collect()
}

/// Every admitted key in `rollup_keys`: dimension, day, key.
async fn admitted_keys(pg: &tokio_postgres::Client) -> HashSet<(String, NaiveDate, String)> {
    pg.query("SELECT dimension, day, key FROM rollup_keys", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, NaiveDate>(1),
                r.get::<_, String>(2),
            )
        })
        .collect()
}

/// The keys of `posts` whose `rollup_other` bits (as the store writes them) say otherwise than
/// `admitted`: counted as their own though not admitted that day, or under `(other)` though
/// admitted.
fn disagreements(
    posts: &[PostKeys<'_>],
    bits: &[i16],
    admitted: &HashSet<(String, NaiveDate, String)>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (post, bit) in posts.iter().zip(bits) {
        let day = post.created_at.date_naive();
        for ((dimension, mask), key) in CAPPED.iter().zip(post.keys) {
            let Some(key) = key else { continue };
            let own = bit & mask == 0;
            let listed = admitted.contains(&(dimension.as_str().to_owned(), day, key.to_owned()));
            if own != listed {
                wrong.push(format!(
                    "{} {day} {key}: own {own}, admitted {listed}",
                    dimension.as_str()
                ));
            }
        }
    }
    wrong
}

/// A producer dating each post a day apart made every batch ask PostgreSQL once per dimension
/// and day, each answer every key of that day: thousands of round trips a batch. One batch
/// asks about a bounded number of days, in one statement; the rest count under `(other)`.
#[actix_rt::test]
async fn a_batch_spread_over_many_days_asks_about_a_bounded_number_of_them() {
    const POSTS: usize = 200;
    const {
        assert!(
            ASKED_GROUPS < POSTS,
            "the batch must name more days than are asked about"
        )
    };
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    let admission = KeyAdmission::new(1_000);
    let start = NaiveDate::from_ymd_opt(1971, 1, 1).unwrap();
    let cities: Vec<(NaiveDate, String)> = (0..POSTS)
        .map(|i| (start + TimeDelta::days(i as i64), format!("city-{i}")))
        .collect();
    let posts = posts_naming(&cities, &[0]);
    let bits = admission.other_bits(&pg, &posts).await.unwrap();
    // One post a day, each day with room: the newest days were asked about and admitted.
    let own: Vec<usize> = bits
        .iter()
        .enumerate()
        .filter(|(_, b)| *b & 1 == 0)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(own, (POSTS - ASKED_GROUPS..POSTS).collect::<Vec<_>>());
    let admitted = admitted_keys(&pg).await;
    assert_eq!(admitted.len(), ASKED_GROUPS);
    assert_eq!(
        disagreements(&posts, &bits, &admitted),
        Vec::<String>::new()
    );

    // The days left out are asked about by the next batch that names them.
    let later = posts_naming(&cities[..10], &[0]);
    let bits = admission.other_bits(&pg, &later).await.unwrap();
    assert_eq!(bits, vec![0; 10]);
    let admitted = admitted_keys(&pg).await;
    assert_eq!(admitted.len(), ASKED_GROUPS + 10);
    assert_eq!(
        disagreements(&later, &bits, &admitted),
        Vec::<String>::new()
    );
}

/// Keys of `days` for one round: `count(d)` keys on the `d`th day, named alike whoever names
/// them (two processes' keys of a day overlap).
fn keys_by_day(
    round: i64,
    days: &[NaiveDate],
    count: impl Fn(usize) -> usize,
) -> Vec<(NaiveDate, String)> {
    days.iter()
        .enumerate()
        .flat_map(|(d, day)| (0..count(d)).map(move |i| (*day, format!("{round}-{d}-{i}"))))
        .collect()
}

/// One statement admits many days' keys, locking each day to the statement's end: two
/// processes locking the same days in opposite orders would wait for each other for good.
/// Two processes admitting keys of the same days at once, each naming the days in the other's
/// order, both finish, no day passes its cap, and each counts a key as its own exactly when it
/// is admitted.
#[actix_rt::test]
async fn processes_admitting_keys_of_the_same_days_at_once_finish_within_the_cap() {
    const CAP: usize = 3;
    const DAYS: i64 = 6;
    let env = TestEnv::migrated().await;
    let (pg_a, pg_b) = (env.pg().await, env.pg().await);
    let (a, b) = (KeyAdmission::new(CAP), KeyAdmission::new(CAP));
    let start = NaiveDate::from_ymd_opt(1980, 1, 1).unwrap();
    for round in 0..8 {
        let days: Vec<NaiveDate> = (0..DAYS)
            .map(|d| start + TimeDelta::days(round * DAYS + d))
            .collect();
        // A batch asks about the days it names most first: the first process's last days, the
        // second's first. Every day is named more keys than its cap, by the two together.
        let named_a = keys_by_day(round, &days, |d| d + 1);
        let named_b = keys_by_day(round, &days, |d| DAYS as usize - d);
        let posts_a = posts_naming(&named_a, &[0, 2]);
        let posts_b = posts_naming(&named_b, &[0, 2]);
        let (bits_a, bits_b) =
            tokio::join!(a.other_bits(&pg_a, &posts_a), b.other_bits(&pg_b, &posts_b));
        let bits_a = bits_a.expect("the first process's batch");
        let bits_b = bits_b.expect("the second process's batch");
        let admitted = admitted_keys(&pg_a).await;
        for day in &days {
            for dimension in ["city", "product"] {
                let held = admitted
                    .iter()
                    .filter(|(d, at, _)| d == dimension && at == day)
                    .count();
                assert_eq!(held, CAP, "{dimension} keys on {day}");
            }
        }
        assert_eq!(
            disagreements(&posts_a, &bits_a, &admitted),
            Vec::<String>::new()
        );
        assert_eq!(
            disagreements(&posts_b, &bits_b, &admitted),
            Vec::<String>::new()
        );
    }
}
