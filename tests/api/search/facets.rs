//! Search facets on the real store: estimated from a hash sample over many matches, and held
//! to their most common keys and newest time buckets whatever a producer sends.

use std::collections::BTreeMap;

use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::{json, Value};

use super::{deleted_posts, WAIT};
use crate::common::*;
use crate::deletions::{deletion, post_at, xadd_all};

/// Counts of `facet` in a facets answer, by key.
fn facet_counts(facets: &Value, facet: &str) -> BTreeMap<String, i64> {
    facets[facet]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key = c["key"].as_str().unwrap().to_string();
            (key, c["count"].as_i64().unwrap())
        })
        .collect()
}

#[actix_rt::test]
async fn facets_over_many_matches_are_estimated_from_the_posts_of_a_hash_sample() {
    let app = spawn_app_tuned(|s| {
        s.search.exact_facets_up_to = 100;
        s.search.facet_sample = 300;
    })
    .await;
    let now = Utc::now();
    let platforms = ["twitter", "reddit", "mastodon"];
    let posts: Vec<Value> = (0..2_500)
        .map(|n| {
            let text = if n % 40 == 0 {
                "late refund, rare"
            } else {
                "late refund"
            };
            let mut p = post_at(&format!("f-{n}"), text, now - TimeDelta::minutes(n as i64));
            p["platform"] = json!(platforms[n % 3]);
            p
        })
        .collect();
    let redis = app.redis().await;
    xadd_all(&redis, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(2_500, WAIT).await);
    let pg = app.env.pg().await;

    // What a sample of the first `m` buckets holds, counted straight from the table.
    let in_sample = |m: i64| {
        let pg = &pg;
        async move {
            let rows = pg
                .query(
                    "SELECT platform, count(*) FROM posts WHERE deleted_at IS NULL \
                     AND (hashtext(id) & 255) < $1 GROUP BY 1",
                    &[&(m as i32)],
                )
                .await
                .unwrap();
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                .collect::<BTreeMap<String, i64>>()
        }
    };
    for deleted in [false, true] {
        let live = if deleted { 2_500 - 125 } else { 2_500 };
        let exact = app
            .get_ok("/api/v1/search?q=refund&limit=1&facets=true&exact=true")
            .await;
        assert_eq!(exact["facets"]["total"], live, "{exact}");
        assert!(exact["facets"]["sample"].is_null(), "{exact}");

        let body = app
            .get_ok("/api/v1/search?q=refund&limit=1&facets=true")
            .await;
        let facets = &body["facets"];
        let share = facets["sample"]["share"]
            .as_f64()
            .unwrap_or_else(|| panic!("not sampled: {facets}"));
        let m = (share * 256.0).round() as i64;
        assert!(
            (1..256).contains(&m) && (share * 256.0 - m as f64).abs() < 1e-9,
            "{facets}"
        );
        let sample = in_sample(m).await;
        let counted: i64 = sample.values().sum();
        assert_eq!(facets["sample"]["posts"], counted, "{facets}");
        let scale = |n: i64| (n as f64 * 256.0 / m as f64).round() as i64;
        assert_eq!(facets["total"], scale(counted), "{facets}");
        let expected: BTreeMap<String, i64> =
            sample.iter().map(|(k, n)| (k.clone(), scale(*n))).collect();
        assert_eq!(facet_counts(facets, "platform"), expected);
        // The sample holds about `facet_sample` matches and estimates the total within a few
        // of its standard errors (sd of the sampled count: sqrt(n p (1 - p))).
        let p = m as f64 / 256.0;
        let sd = (live as f64 * p * (1.0 - p)).sqrt() / p;
        let total = facets["total"].as_f64().unwrap();
        assert!(
            (total - live as f64).abs() <= 4.0 * sd,
            "{total} vs {live} (sd {sd})"
        );

        // Few matches are counted one by one, never sampled.
        let rare = app
            .get_ok("/api/v1/search?q=rare&limit=1&facets=true")
            .await;
        assert_eq!(rare["facets"]["total"], 63);
        assert!(rare["facets"]["sample"].is_null(), "{rare}");

        if !deleted {
            // Deleted posts leave the sample as they leave every count (125, none rare), and
            // a scope of more than 2,000 candidates is still estimated.
            let deletions: Vec<Value> = (10..2_500)
                .step_by(20)
                .map(|n| deletion(&format!("f-{n}"), now))
                .collect();
            xadd_all(&redis, &app.env.stream, &deletions).await;
            assert!(wait_until(WAIT, || async { deleted_posts(&pg).await == 125 }).await);
        }
    }
    app.shutdown().await;
}

/// A producer may give each post a product of its own; the product facet listed every one,
/// built whole in memory (half a million of them made a 75 MB body for one request). Each free
/// facet answers its most common keys.
#[actix_rt::test]
async fn a_facet_of_free_labels_answers_its_most_common_keys() {
    let app = spawn_app().await;
    let redis = app.redis().await;
    let keys = pulse::db::search::MAX_FACET_KEYS;
    let mut posts: Vec<Value> = (0..keys + 50)
        .map(|n| {
            PostEvent::new(&format!("prod-{n}"), "zorbling gadgets")
                .product(&format!("product-{n}"))
                .json()
        })
        .collect();
    posts.extend((0..5).map(|n| {
        PostEvent::new(&format!("common-{n}"), "zorbling gadgets")
            .product("the-common-one")
            .json()
    }));
    xadd_all(&redis, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(posts.len() as i64, WAIT).await);
    for exact in ["", "&exact=true"] {
        let body = app
            .get_ok(&format!("/api/v1/search?q=zorbling&facets=true{exact}"))
            .await;
        let facets = &body["facets"];
        assert_eq!(facets["total"], posts.len(), "{exact}");
        let products = facets["product"].as_array().unwrap();
        assert_eq!(products.len(), keys, "{exact}");
        assert_eq!(products[0]["key"], "the-common-one", "{exact}");
        assert_eq!(products[0]["count"], 5, "{exact}");
    }
}

/// A producer may backfill posts of any date, and the time facet listed a bucket for every
/// hour or day with a match: one post an hour since 1970 would be half a million buckets for
/// one request. Each answer holds the newest `MAX_FACET_BUCKETS`, counted in full, whether
/// PostgreSQL counts them or the posts are checked one by one (`NEAR`).
#[actix_rt::test]
async fn the_time_facet_answers_its_newest_buckets() {
    let app = spawn_app().await;
    let redis = app.redis().await;
    let most = pulse::db::search::MAX_FACET_BUCKETS;
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    // One post an hour for `most + 20` hours, two in the newest hour.
    let mut posts: Vec<Value> = (0..most as i64 + 20)
        .map(|n| {
            post_at(
                &format!("hourly-{n}"),
                "glimmerwick lantern",
                hour - TimeDelta::hours(n) + TimeDelta::seconds(1),
            )
        })
        .collect();
    posts.push(post_at(
        "hourly-again",
        "glimmerwick lantern",
        hour + TimeDelta::seconds(2),
    ));
    xadd_all(&redis, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(posts.len() as i64, WAIT).await);
    for q in ["glimmerwick", "glimmerwick%20NEAR/2%20lantern"] {
        for exact in ["", "&exact=true"] {
            let body = app
                .get_ok(&format!(
                    "/api/v1/search?q={q}&limit=1&facets=true&interval=hour{exact}"
                ))
                .await;
            let facets = &body["facets"];
            assert_eq!(facets["total"], posts.len(), "{q}{exact}");
            let buckets = facets["buckets"].as_array().unwrap();
            assert_eq!(buckets.len(), most, "{q}{exact}");
            let at = |b: &Value| {
                b["at"]
                    .as_str()
                    .unwrap()
                    .parse::<chrono::DateTime<Utc>>()
                    .unwrap()
            };
            assert_eq!(at(&buckets[most - 1]), hour, "{q}{exact}: newest last");
            assert_eq!(buckets[most - 1]["count"], 2, "{q}{exact}");
            assert_eq!(
                at(&buckets[0]),
                hour - TimeDelta::hours(most as i64 - 1),
                "{q}{exact}: the oldest kept"
            );
            assert!(
                buckets[..most - 1].iter().all(|b| b["count"] == 1),
                "{q}{exact}"
            );
        }
    }
    app.shutdown().await;
}
