//! REST metrics against a real Pulse: windowed aggregates equal SQL over the stored posts,
//! rollups from two processes sharing a group equal those of one, time series and trending
//! terms add up.

use crate::common;
use std::time::Duration;

use common::*;
use fred::prelude::*;
use pulse::models::Event;
use pulse::sources::demo::ProduceOptions;

/// `n` generated events (posts, and engagements when asked), timestamped now.
fn events(n: usize, seed: u64, engagements: bool, prefix: &str) -> Vec<String> {
    let mut generator = pulse::sources::demo::generator(&ProduceOptions {
        rate: 0.0,
        total: None,
        duration: None,
        seed,
        engagements,
        id_prefix: prefix.into(),
        scenarios: false,
    });
    let now = chrono::Utc::now();
    (0..n)
        .map(|_| {
            let mut e = generator.next_event();
            match &mut e {
                Event::Post(p) => p.created_at = now,
                Event::Engagement(g) => g.at = now,
                Event::Delete(d) => d.at = now,
            }
            serde_json::to_string(&e).unwrap()
        })
        .collect()
}

/// Every post stored and acknowledged, and every engagement that came before its post (in
/// a batch committed before or beside it) released to be counted.
async fn settled(env: &TestEnv, redis: &Client, posts: i64) -> bool {
    wait_until(Duration::from_secs(60), || async {
        env.post_count().await == posts
            && env.unfinished(redis).await == 0
            && env.held_engagements().await == 0
    })
    .await
}

#[actix_rt::test]
async fn window_metrics_equal_sql_over_the_stored_posts() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    app.send_events(&events(400, 3, false, "w-")).await;
    assert!(settled(env, &redis, 400).await);

    let overall = app.get_ok("/api/v1/metrics/overall?window=5m").await;
    let from: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(overall["from"].clone()).unwrap();
    let pg = env.pg().await;
    let row = pg
        .query_one(
            "SELECT count(*), avg(sentiment_score)::float8, \
             count(*) FILTER (WHERE sentiment_label = 'negative'), \
             count(*) FILTER (WHERE sentiment_label = 'positive'), \
             count(*) FILTER (WHERE churn_risk >= 0.6), avg(toxicity)::float8 \
             FROM posts WHERE created_at >= $1 AND language_support <> 'unsupported'",
            &[&from],
        )
        .await
        .unwrap();
    let stats = &overall["stats"];
    assert_eq!(stats["posts"].as_i64().unwrap(), row.get::<_, i64>(0));
    assert!((stats["sentiment"]["mean"].as_f64().unwrap() - row.get::<_, f64>(1)).abs() < 1e-4);
    assert_eq!(
        stats["sentiment"]["negative"].as_i64().unwrap(),
        row.get::<_, i64>(2)
    );
    assert_eq!(
        stats["sentiment"]["positive"].as_i64().unwrap(),
        row.get::<_, i64>(3)
    );
    assert_eq!(
        stats["churn"]["high"].as_i64().unwrap(),
        row.get::<_, i64>(4)
    );
    assert!((stats["toxicity_mean"].as_f64().unwrap() - row.get::<_, f64>(5)).abs() < 1e-4);

    for (path, column) in [
        ("/api/v1/metrics/platforms?window=1h", "platform"),
        ("/api/v1/metrics/products?window=1h", "product"),
        ("/api/v1/metrics/channels?window=1h", "channel"),
    ] {
        let body = app.get_ok(path).await;
        let from: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(body["from"].clone()).unwrap();
        let sql = format!(
            "SELECT {column}, count(*) FROM posts WHERE created_at >= $1 AND {column} IS NOT NULL \
             AND language_support <> 'unsupported' GROUP BY 1"
        );
        let expected: std::collections::BTreeMap<String, i64> = pg
            .query(&sql, &[&from])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let got: std::collections::BTreeMap<String, i64> =
            posts_by_key(&body["items"]).into_iter().collect();
        assert_eq!(got, expected, "{path}");
        assert!(
            expected.len() > 1,
            "the generator spreads posts over several {column}s"
        );
    }

    // Share of voice adds up to one.
    let products = app.get_ok("/api/v1/metrics/products?window=5m").await;
    let volume: f64 = sum_of(&products["items"], |i| {
        i["share_of_voice"]["volume"].as_f64().unwrap()
    });
    assert!((volume - 1.0).abs() < 1e-9);

    // A filtered query reads the posts themselves and agrees with SQL too.
    let geo = app
        .get_ok("/api/v1/metrics/geo?window=5m&platform=twitter")
        .await;
    let from: chrono::DateTime<chrono::Utc> = serde_json::from_value(geo["from"].clone()).unwrap();
    let expected: i64 = pg
        .scalar("SELECT count(*) FROM posts WHERE created_at >= $1 AND platform = 'twitter' AND country IS NOT NULL AND language_support <> 'unsupported'", &[&from]).await;
    let got: i64 = sum_of(&geo["countries"], |i| i["posts"].as_i64().unwrap());
    assert_eq!(got, expected);

    // The time series of the last hour adds up to the hour's total.
    let series = app
        .get_ok("/api/v1/metrics/timeseries?dimension=overall&bucket=1m")
        .await;
    let total: i64 = sum_of(&series["points"], |p| p["posts"].as_i64().unwrap());
    assert_eq!(
        total,
        row.get::<_, i64>(0),
        "the posts the lexicon understood"
    );

    for bad in [
        "/api/v1/metrics/overall?window=2m",
        "/api/v1/metrics/platforms?platform=myspace",
        "/api/v1/metrics/timeseries?dimension=platform",
        "/api/v1/metrics/timeseries?bucket=7m",
        "/api/v1/trending/terms?limit=0",
    ] {
        let (status, body) = app.get(bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad}");
    }
    app.shutdown().await;
}

#[actix_rt::test]
async fn trending_terms_count_hashtags_and_words() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    for i in 0..30 {
        let text = if i % 3 == 0 {
            "battery drains so fast #trendcheck"
        } else {
            "loving the battery #trendcheck"
        };
        env.xadd_post(&redis, &format!("t-{i}"), text).await;
    }
    assert!(settled(env, &redis, 30).await);
    app.aggregator()
        .send(pulse::actors::aggregator::FlushTerms)
        .await
        .unwrap();
    let body = app.get_ok("/api/v1/trending/terms?window=1h&limit=5").await;
    let terms = body["terms"].as_array().unwrap();
    let find = |t: &str| {
        terms
            .iter()
            .find(|x| x["term"] == t)
            .unwrap_or_else(|| panic!("{t} in {body}"))
            .clone()
    };
    assert_eq!(find("#trendcheck")["posts"], 30);
    assert_eq!(find("#trendcheck")["hashtag"], true);
    assert_eq!(find("battery")["posts"], 30);
    app.shutdown().await;
}

/// The columns that depend only on posts (engagements are attributed to dimensions only once
/// their post is stored, which depends on batch timing across processes).
const POST_COLUMNS: &str = "minute, dimension, key, posts, round(sentiment_sum::numeric, 3), negative, neutral, \
    positive, round(toxicity_sum::numeric, 3), round(churn_sum::numeric, 3), high_churn, anger, joy, optimism, sadness";

async fn rollups(env: &TestEnv) -> (Vec<String>, Vec<String>) {
    let pg = env.pg().await;
    let posts = pg
        .column(
            &format!(
                "SELECT ({POST_COLUMNS})::text FROM metric_rollups ORDER BY dimension, key, minute"
            ),
            &[],
        )
        .await;
    let engagement = pg
        .column(
            "SELECT (minute, likes, shares, comments, views)::text FROM metric_rollups \
             WHERE dimension = 'overall' ORDER BY minute",
            &[],
        )
        .await;
    (posts, engagement)
}

#[actix_rt::test]
async fn rollups_of_two_processes_sharing_a_group_equal_those_of_one() {
    let evs = events(3_000, 9, true, "r-");
    let posts = evs
        .iter()
        .filter(|e| e.starts_with("{\"type\":\"post\""))
        .count() as i64;
    assert!(
        posts > 10 && (posts as usize) < evs.len(),
        "a mix of posts and engagements"
    );

    let one = spawn_app().await;
    let redis = one.redis().await;
    one.send_events(&evs).await;
    assert!(settled(&one.env, &redis, posts).await);
    let single = one.shutdown().await;

    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    assert_ne!(a.pipeline().consumer(), b.pipeline().consumer());
    a.send_events(&evs).await;
    assert!(settled(&a.env, &redis, posts).await);
    let shared = a.shutdown().await;
    b.shutdown().await;

    let (one_posts, one_eng) = rollups(&single).await;
    let (two_posts, two_eng) = rollups(&shared).await;
    assert!(one_posts.len() > 20);
    assert_eq!(one_posts, two_posts);
    assert_eq!(one_eng, two_eng);
}

/// The likes the rollups count, every post together.
async fn likes_counted(env: &TestEnv) -> i64 {
    env.pg()
        .await
        .query_one(
            "SELECT coalesce(sum(likes), 0)::int8 FROM metric_rollups WHERE dimension = 'overall'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Likes of one post, `count` of them, each with an id of its own under `prefix`.
fn likes_of(post: &str, prefix: &str, count: usize) -> Vec<String> {
    let at = chrono::Utc::now().to_rfc3339();
    (0..count)
        .map(|i| {
            serde_json::json!({"type": "engagement", "id": format!("{prefix}-{i}"),
                "post_id": post, "kind": "like", "at": at})
            .to_string()
        })
        .collect()
}

/// A settling pass's worth of engagements for a post that never comes, held before the
/// likes of a post that does: the settling passes go on past them instead of looking at
/// them again until their hold ends (5 minutes), so the awaited post is counted whole.
#[actix_rt::test]
async fn engagements_of_posts_that_never_come_do_not_hold_back_the_others() {
    let ghosts = pulse::db::deletions::SETTLE_BATCH as usize;
    let waiting = pulse::db::batch::SETTLED_WITH_THEIR_POST * 2;
    let app = spawn_app().await;
    let redis = app.redis().await;
    let (env, redis) = (&app.env, &redis);
    let held = |n: usize| {
        wait_until(Duration::from_secs(60), move || async move {
            env.held_engagements().await == n as i64 && env.unfinished(redis).await == 0
        })
    };
    app.send_events(&likes_of("never-posted", "ghost-like", ghosts))
        .await;
    assert!(held(ghosts).await, "the ghosts' likes are held");
    app.send_events(&likes_of("awaited", "awaited-like", waiting))
        .await;
    assert!(
        held(ghosts + waiting).await,
        "the awaited post's likes are held"
    );
    app.send_events(&[post_json("awaited", "worth the wait")])
        .await;
    assert!(
        held(ghosts).await,
        "every like of the awaited post is released while the ghosts' hold goes on"
    );
    assert_eq!(likes_counted(env).await, waiting as i64);
    app.shutdown().await;
}

/// Engagements that came before their post wait for it, held; when it comes, its batch releases
/// a bounded number of them and the settling passes the rest, so a post that thousands waited
/// for is counted whole without one statement returning them all.
#[actix_rt::test]
async fn many_engagements_held_for_one_post_are_all_counted_once_it_comes() {
    let waiting = pulse::db::batch::SETTLED_WITH_THEIR_POST * 2 + 500;
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    app.send_events(&likes_of("awaited", "held-like", waiting))
        .await;
    assert!(
        wait_until(Duration::from_secs(60), || async {
            env.held_engagements().await == waiting as i64 && env.unfinished(&redis).await == 0
        })
        .await,
        "the likes are held for their post"
    );
    app.send_events(&[post_json("awaited", "worth the wait")])
        .await;
    assert!(settled(env, &redis, 1).await);
    assert_eq!(likes_counted(env).await, waiting as i64);
    app.shutdown().await;
}

/// Hourly buckets, of the time series and of a story's growth, are hours of UTC whatever the
/// database's time zone: on a server in India they fell at :30, one post of 10:10 and one of
/// 10:40 landing in two buckets (09:30 and 10:30).
#[actix_rt::test]
async fn hourly_buckets_are_hours_of_utc_on_a_server_in_another_time_zone() {
    let env = TestEnv::new().await;
    let admin = env.pg().await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET timezone = 'Asia/Kolkata'",
            env.database
        ))
        .await
        .unwrap();
    let kolkata = env.pg().await;
    let zone: String = kolkata.scalar("SHOW timezone", &[]).await;
    assert_eq!(
        zone, "Asia/Kolkata",
        "sessions start in the database's zone"
    );
    let app = env.serve(|s| s.stories.enabled = false).await;

    let day = (chrono::Utc::now() - chrono::TimeDelta::days(1)).date_naive();
    let at = |h: u32, m: u32| day.and_hms_opt(h, m, 0).unwrap().and_utc();
    let posts: Vec<String> = [("tz-1", at(10, 10)), ("tz-2", at(10, 40))]
        .into_iter()
        .map(|(id, created)| {
            PostEvent::new(id, "the new pulse-phone camera is great")
                .lang("en")
                .at(created)
                .to_string()
        })
        .collect();
    app.send_events(&posts).await;
    let path = format!(
        "/api/v1/metrics/timeseries?dimension=overall&bucket=1h&from={}&to={}",
        at(8, 0).format("%Y-%m-%dT%H:%M:%SZ"),
        at(13, 0).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let series = app
        .wait_for(&path, Duration::from_secs(60), |body| {
            sum_of(&body["points"], |p| p["posts"].as_i64().unwrap()) == 2
        })
        .await;
    let points: Vec<(chrono::DateTime<chrono::Utc>, i64)> = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                serde_json::from_value(p["at"].clone()).unwrap(),
                p["posts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(points, [(at(10, 0), 2)], "{series}");

    // The statements themselves name UTC: on a session in India (not a pool's) too.
    let own = pulse::db::rollups::series(
        &kolkata,
        pulse::models::metrics::Dimension::Overall,
        "",
        at(8, 0),
        at(13, 0),
        60,
    )
    .await
    .unwrap();
    let own: Vec<_> = own.iter().map(|(at, s)| (*at, s.posts)).collect();
    assert_eq!(own, [(at(10, 0), 2)]);
    kolkata
        .batch_execute(&format!(
            "INSERT INTO stories (id, label, terms, born_at, first_at, last_at, size, status) \
             VALUES (7, 'pulse-phone camera', '{{camera}}', '{0}', '{0}', '{1}', 2, 'live'); \
             UPDATE posts SET story_id = 7 WHERE id IN ('tz-1', 'tz-2');",
            at(10, 10).to_rfc3339(),
            at(10, 40).to_rfc3339()
        ))
        .await
        .unwrap();
    let story = pulse::db::stories::detail(&kolkata, 7, 3_600)
        .await
        .unwrap()
        .expect("the story");
    let growth: Vec<_> = story.growth.iter().map(|g| (g.at, g.posts)).collect();
    assert_eq!(growth, [(at(10, 0), 2)]);
    let (status, body) = app.get("/api/v1/stories/7").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["growth"],
        serde_json::json!([{"at": at(10, 0), "posts": 2}])
    );
    app.shutdown().await;
}
