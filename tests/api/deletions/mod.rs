//! Deletions and ownership on the real pipeline: a deleted post leaves every surface that
//! showed or counted it, the rollups always equal a recount from the posts, and a producer
//! cannot delete, squat on or inflate another producer's posts ([`ownership`]).

mod ownership;

use crate::common;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::*;
use fred::prelude::*;
use futures::StreamExt;
use pulse::auth::{keys, Role};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(60);

pub(crate) fn post_at(id: &str, text: &str, created: DateTime<Utc>) -> Value {
    PostEvent::new(id, text).at(created).json()
}

pub(crate) fn engagement(id: &str, post: &str, kind: &str, count: u32, at: DateTime<Utc>) -> Value {
    json!({"type": "engagement", "id": id, "post_id": post, "kind": kind, "count": count,
           "at": at.to_rfc3339(), "actor_followers": 150})
}

pub(crate) fn deletion(post: &str, at: DateTime<Utc>) -> Value {
    json!({"type": "delete", "post_id": post, "at": at.to_rfc3339()})
}

/// Sends the deletion of post `id` and waits until its page says it is deleted.
pub(crate) async fn delete_post(app: &TestApp, id: &str) {
    app.send_events(&[deletion(id, Utc::now()).to_string()])
        .await;
    app.wait_for(&format!("/api/v1/posts/{id}"), WAIT, |post| {
        post["deleted_at"].is_string()
    })
    .await;
}

/// Whether the post `id` is marked deleted; `None` while it is not stored.
pub(crate) async fn marked_deleted(pg: &tokio_postgres::Client, id: &str) -> Option<bool> {
    pg.query_opt(
        "SELECT deleted_at IS NOT NULL FROM posts WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap()
    .map(|r| r.get(0))
}

/// Waits up to `timeout` until the post `id` is stored and marked deleted.
pub(crate) async fn comes_marked_deleted(
    pg: &tokio_postgres::Client,
    id: &str,
    timeout: Duration,
) -> bool {
    wait_until(timeout, || async {
        marked_deleted(pg, id).await == Some(true)
    })
    .await
}

pub(crate) async fn xadd_all(redis: &Client, stream: &str, events: &[Value]) {
    let encoded: Vec<String> = events.iter().map(Value::to_string).collect();
    pulse::streams::producer::xadd_events(redis, stream, &encoded)
        .await
        .expect("xadd");
}

/// Waits until every entry of the stream was read and acknowledged.
pub(crate) async fn read_all(env: &TestEnv, redis: &Client) -> bool {
    let mut s = pulse::config::Settings::default();
    s.redis.stream = env.stream.clone();
    s.redis.group = env.group.clone();
    wait_until(WAIT, || async {
        pulse::streams::group::group_stats(redis, &s)
            .await
            .is_ok_and(|g| g.lag == Some(0) && g.pending == 0)
    })
    .await
}

/// Waits until every entry was read and acknowledged and no engagement is held.
pub(crate) async fn settled(env: &TestEnv, redis: &Client) -> bool {
    let pg = env.pg().await;
    read_all(env, redis).await
        && wait_until(WAIT, || async {
            let held: i64 = pg
                .scalar("SELECT count(*) FROM engagements WHERE held", &[])
                .await;
            held == 0
        })
        .await
}

/// Waits until `n` stored posts are marked deleted.
async fn deleted_posts_reach(pg: &tokio_postgres::Client, n: i64) -> bool {
    wait_until(WAIT, || async {
        pg.query_one(
            "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL",
            &[],
        )
        .await
        .is_ok_and(|r| r.get::<_, i64>(0) == n)
    })
    .await
}

/// A WebSocket subscriber of every post.
pub(crate) struct Subscriber {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Subscriber {
    pub(crate) async fn posts(app: &TestApp) -> Subscriber {
        let ws = app.subscribe_ws(&["posts"]).await;
        let mut s = Subscriber { ws };
        assert_eq!(s.next().await["type"], "subscribed");
        s
    }

    /// The next text message; the wait counts from the call, so the server's pings do not
    /// extend it.
    async fn next(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame within the wait")
                .expect("the socket is open")
                .expect("a frame");
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str()).expect("JSON");
            }
        }
    }

    /// Every `posts` message up to and including the first that `last` matches.
    pub(crate) async fn until(&mut self, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let m = self.next().await;
            let done = last(&m);
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
}

fn has_term(terms: &Value, term: &str) -> bool {
    terms["terms"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x["term"] == term))
}

fn trending_ids(body: &Value) -> Vec<String> {
    strings(&body["items"], "post_id")
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Asserts the post `id` is none of the `limit` top trending posts and has no virality.
async fn assert_gone_from_trending(app: &TestApp, id: &str, limit: usize) {
    let (_, trending) = app
        .get(&format!("/api/v1/trending/posts?limit={limit}"))
        .await;
    assert!(
        !trending_ids(&trending).contains(&id.to_string()),
        "{trending}"
    );
    let (status, _) = app.get(&format!("/api/v1/posts/{id}/virality")).await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn a_post_leaves_every_surface_once_deleted() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let app = env
        .serve(|s| {
            quick_alerts(s, 0.3);
            quick_scores(s);
        })
        .await;
    let env = &app.env;
    app.only_rule(
        &json!({"name": "Phone negativity", "kind": "negativity", "dimension": "product",
                  "key": "pulse-phone", "threshold": 0.5, "min_volume": 3,
                  "severity": "warning"}),
    )
    .await;
    let mut live = Subscriber::posts(&app).await;

    // The post under watch quotes a word no other post has.
    let now = Utc::now();
    let mut events = vec![post_at(
        "walk",
        "zorblax crashed again, terrible awful phone, I hate it",
        now - TimeDelta::seconds(30),
    )];
    for i in 0..3 {
        events.push(post_at(
            &format!("other-{i}"),
            "terrible awful phone, I hate it, the worst",
            now - TimeDelta::seconds(20),
        ));
    }
    for i in 0..5 {
        events.push(engagement(
            &format!("s{i}"),
            "walk",
            "share",
            1,
            now - TimeDelta::seconds(25 - i),
        ));
    }
    // A post whose deletion came first is never pushed live nor shown.
    events.push(deletion("early", now));
    events.push(post_at("early", "zorblax early bird post", now));
    // In one transaction, so one batch holds them all: the deletion before its post, and the
    // alert's first evaluation sees all four posts.
    let encoded: Vec<String> = events.iter().map(Value::to_string).collect();
    pulse::streams::producer::xadd_events_atomically(&redis, &env.stream, &encoded, &[])
        .await
        .unwrap();
    assert!(settled(env, &redis).await);
    let stats = |query: &'static str| {
        let app = &app;
        async move {
            let (_, body) = app
                .get(&format!("/api/v1/metrics/overall?window=1h{query}"))
                .await;
            (
                body["stats"]["posts"].as_i64().unwrap(),
                body["stats"]["engagement"]["shares"].as_i64().unwrap_or(-1),
            )
        }
    };

    // Before: everywhere.
    let (status, one) = app.get("/api/v1/posts/walk").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["deleted_at"], Value::Null);
    let listed = listed_post_ids(&app, "").await;
    assert!(listed.contains(&"walk".to_string()) && !listed.contains(&"early".to_string()));
    assert!(wait_until(WAIT, || async { stats("").await.0 == 4 }).await);
    assert_eq!(stats("").await, stats("&product=pulse-phone").await);
    app.aggregator()
        .send(pulse::actors::aggregator::FlushTerms)
        .await
        .unwrap();
    let (_, terms) = app.get("/api/v1/trending/terms?window=1h&limit=200").await;
    assert!(has_term(&terms, "zorblax"), "{terms}");
    assert!(
        wait_until(WAIT, || async {
            let (_, body) = app.get("/api/v1/trending/posts?limit=10").await;
            trending_ids(&body).contains(&"walk".to_string())
        })
        .await
    );
    let alert = || async {
        let (_, body) = app.get("/api/v1/alerts").await;
        body["items"][0].clone()
    };
    assert!(
        wait_until(WAIT, || async {
            alert().await["evidence"]["top_posts"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["id"] == "walk"))
        })
        .await,
        "{}",
        alert().await
    );
    let pushed = live
        .until(|m| m["type"] == "message:new" && m["data"]["id"] == "walk")
        .await;
    assert!(
        pushed.iter().all(|m| m["data"]["id"] != "early"),
        "{pushed:?}"
    );

    // The deletion.
    delete_post(&app, "walk").await;

    // After: gone from every surface but the post's own page, which says it is deleted.
    let gone = live
        .until(|m| m["type"] == "message:deleted" && m["data"]["id"] == "walk")
        .await;
    assert!(gone.last().unwrap()["data"]["deleted_at"].is_string());
    assert!(!listed_post_ids(&app, "")
        .await
        .contains(&"walk".to_string()));
    assert!(wait_until(WAIT, || async { stats("").await == (3, 0) }).await);
    assert_eq!(stats("&product=pulse-phone").await, (3, 0));
    assert_eq!(stats("&sentiment=negative").await, (3, 0));
    app.aggregator()
        .send(pulse::actors::aggregator::FlushTerms)
        .await
        .unwrap();
    let (_, terms) = app.get("/api/v1/trending/terms?window=1h&limit=200").await;
    assert!(!has_term(&terms, "zorblax"), "{terms}");
    assert!(has_term(&terms, "terrible"), "{terms}");
    assert_gone_from_trending(&app, "walk", 10).await;
    assert!(
        wait_until(WAIT, || async {
            alert().await["evidence"]["deleted_posts"] == 1
        })
        .await,
        "{}",
        alert().await
    );
    let alert = alert().await;
    assert_eq!(alert["status"], "firing", "{alert}");
    assert!(!alert.to_string().contains("zorblax"), "{alert}");
    assert_eq!(
        alert["evidence"]["top_posts"].as_array().unwrap().len(),
        3,
        "{alert}"
    );
    app.shutdown().await;
}

/// How many posts `terms` (a trending terms answer) counts `term` in, if it lists it.
fn term_posts(terms: &Value, term: &str) -> Option<i64> {
    terms["terms"]
        .as_array()?
        .iter()
        .find(|x| x["term"] == term)
        .and_then(|x| x["posts"].as_i64())
}

/// A producer may send one post id several times in one request, each copy by another author
/// with other words. The store writes one copy; its row (which held every copy's topics) and
/// the live surfaces must see that one, once:
/// counted, the others were trending weight that no stored post carried, by authors who never
/// wrote it, and that deleting the post did not take back out.
#[actix_rt::test]
async fn copies_of_one_post_id_in_one_request_count_as_the_copy_stored() {
    let app = spawn_app().await;
    let redis = app.redis().await;
    let mut live = Subscriber::posts(&app).await;
    let words = ["zeblit", "wombrac", "flindor"];
    let mut topic_of = std::collections::HashMap::new();
    for word in words {
        topic_of.insert(word, app.create_topic(word, word).await);
    }
    assert!(crate::topics::matcher_holds(&app, words.len()).await);
    let created = Utc::now() - TimeDelta::seconds(30);
    let mut events: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            PostEvent::new("dup", &format!("quxvorn {word}"))
                .author(&format!("copy-{i}"), 10)
                .at(created)
                .json()
        })
        .collect();
    events.push(post_at(
        "after",
        "an ordinary post after the copies",
        created,
    ));
    // One request is one transaction: the copies reach the pipeline in one batch.
    let (status, body) = app.post("/api/v1/events", &Value::Array(events)).await;
    assert_eq!(status, 202, "{body}");
    assert!(settled(&app.env, &redis).await);
    let stored = app.get_ok("/api/v1/posts/dup").await;
    let text = stored["text"].as_str().unwrap_or_default().to_string();
    let kept = words
        .iter()
        .copied()
        .find(|w| text.contains(w))
        .expect("one copy is stored");
    // The stored row names the stored copy's topic only.
    assert_eq!(stored["topics"], json!([topic_of[kept]]), "{stored}");

    // Pushed live once, as stored.
    let pushed = live
        .until(|m| m["type"] == "message:new" && m["data"]["id"] == "after")
        .await;
    let copies: Vec<&Value> = pushed
        .iter()
        .filter(|m| m["type"] == "message:new" && m["data"]["id"] == "dup")
        .collect();
    assert_eq!(copies.len(), 1, "{pushed:?}");
    assert_eq!(copies[0]["data"]["text"], stored["text"], "{pushed:?}");
    assert_eq!(copies[0]["data"]["author"], stored["author"], "{pushed:?}");

    // Trending: the stored copy's words, in one post; the other copies' in none.
    let terms = || {
        let app = &app;
        async move {
            app.aggregator()
                .send(pulse::actors::aggregator::FlushTerms)
                .await
                .unwrap();
            app.get("/api/v1/trending/terms?window=1h&limit=200")
                .await
                .1
        }
    };
    assert!(
        wait_until(WAIT, || async { has_term(&terms().await, kept) }).await,
        "{}",
        terms().await
    );
    let seen = terms().await;
    assert_eq!(term_posts(&seen, "quxvorn"), Some(1), "{seen}");
    assert_eq!(term_posts(&seen, kept), Some(1), "{seen}");
    for word in words.iter().filter(|w| **w != kept) {
        assert!(
            !has_term(&seen, word),
            "{word}, of a copy not stored: {seen}"
        );
    }

    // Deleted, the post takes out everything it was counted for.
    let (status, body) = app
        .post("/api/v1/events", &deletion("dup", Utc::now()))
        .await;
    assert_eq!(status, 202, "{body}");
    app.wait_for("/api/v1/posts/dup", WAIT, |post| {
        post["deleted_at"].is_string()
    })
    .await;
    assert!(
        wait_until(WAIT, || async {
            let now = terms().await;
            !has_term(&now, "quxvorn") && !has_term(&now, kept)
        })
        .await,
        "{}",
        terms().await
    );
    app.shutdown().await;
}

pub(crate) type Keyed = BTreeMap<(String, String), Vec<i64>>;

/// Rows of (dimension, key, figures...) by dimension and key, leaving out all-zero ones.
pub(crate) fn keyed(rows: &[tokio_postgres::Row]) -> Keyed {
    rows.iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                (2..9).map(|i| r.get::<_, i64>(i)).collect(),
            )
        })
        .filter(|(_, v): &(_, Vec<i64>)| v.iter().any(|x| *x != 0))
        .collect()
}

/// Every dimension's rollups, as the API reads them: (dimension, key) -> posts, negative,
/// neutral, positive, sentiment sum (rounded), likes, shares.
pub(crate) async fn rollups(pg: &tokio_postgres::Client) -> Keyed {
    let rows = pg
        .query(
            "SELECT dimension, key, sum(posts)::int8, sum(negative)::int8, sum(neutral)::int8, \
             sum(positive)::int8, round(sum(sentiment_sum) * 1000)::int8, sum(likes)::int8, \
             sum(shares)::int8 FROM metric_rollups GROUP BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    keyed(&rows)
}

/// The same, recounted from the posts that are not deleted and the engagements that are not
/// held, written out here independently of the database's own definition.
async fn recount(pg: &tokio_postgres::Client) -> Keyed {
    let rows = pg
        .query(
            "WITH p AS (SELECT * FROM posts WHERE deleted_at IS NULL), \
             keyed AS ( \
                 SELECT p.*, d.dimension, d.key FROM p CROSS JOIN LATERAL (VALUES \
                     ('overall', ''), ('platform', p.platform), ('city', p.city), \
                     ('country', p.country), ('product', p.product), ('channel', p.channel), \
                     ('language', COALESCE(p.lang, 'und')), ('support', p.language_support)) \
                     AS d (dimension, key) \
                 WHERE d.key IS NOT NULL AND (p.language_support <> 'unsupported' \
                     OR d.dimension IN ('language', 'support'))), \
             scored AS ( \
                 SELECT dimension, key, count(*) AS posts, \
                     count(*) FILTER (WHERE sentiment_label = 'negative' AND language_support <> 'unsupported') AS negative, \
                     count(*) FILTER (WHERE sentiment_label = 'neutral' AND language_support <> 'unsupported') AS neutral, \
                     count(*) FILTER (WHERE sentiment_label = 'positive' AND language_support <> 'unsupported') AS positive, \
                     COALESCE(sum(sentiment_score::float8) FILTER (WHERE language_support <> 'unsupported'), 0) AS sentiment \
                 FROM keyed GROUP BY 1, 2), \
             engaged AS ( \
                 SELECT k.dimension, k.key, \
                     sum(e.count) FILTER (WHERE e.kind = 'like') AS likes, \
                     sum(e.count) FILTER (WHERE e.kind = 'share') AS shares \
                 FROM engagements e JOIN p ON p.id = e.post_id CROSS JOIN LATERAL (VALUES \
                     ('overall', ''), ('platform', p.platform), ('city', p.city), \
                     ('country', p.country), ('product', p.product), ('channel', p.channel)) \
                     AS k (dimension, key) \
                 WHERE NOT e.held AND k.key IS NOT NULL GROUP BY 1, 2) \
             SELECT COALESCE(s.dimension, g.dimension), COALESCE(s.key, g.key), \
                 COALESCE(s.posts, 0)::int8, COALESCE(s.negative, 0)::int8, \
                 COALESCE(s.neutral, 0)::int8, COALESCE(s.positive, 0)::int8, \
                 round(COALESCE(s.sentiment, 0) * 1000)::int8, COALESCE(g.likes, 0)::int8, \
                 COALESCE(g.shares, 0)::int8 \
             FROM scored s FULL JOIN engaged g ON g.dimension = s.dimension AND g.key = s.key",
            &[],
        )
        .await
        .unwrap();
    keyed(&rows)
}

#[actix_rt::test]
async fn rollups_equal_a_recount_through_additions_deletions_and_races_of_every_support_class() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    let pg = env.pg().await;
    let now = Utc::now();
    // The lexicon reads English (supported); emoji alone name no language (unverified);
    // German is read by no model here (unsupported).
    let texts = [
        ("en", "This phone is the worst, it broke after a day"),
        ("en", "I love the new phone, great battery"),
        ("emoji", "😀😀😀 👍👍 🎉"),
        (
            "de",
            "Das Telefon ist kaputt und der Kundendienst antwortet nicht. Schrecklich!",
        ),
    ];
    let mut events = Vec::new();
    for round in 0..3 {
        for (i, (class, text)) in texts.iter().enumerate() {
            let id = format!("{class}-{round}-{i}");
            let created = now - TimeDelta::minutes(round * 2 + i as i64);
            events.push(post_at(&id, text, created));
            events.push(engagement(&format!("{id}-l"), &id, "like", 3, created));
            events.push(engagement(&format!("{id}-s"), &id, "share", 2, created));
        }
    }
    // Deletions that come first: those posts are stored deleted.
    for (i, (class, _)) in texts.iter().enumerate() {
        events.insert(0, deletion(&format!("{class}-0-{i}"), now));
    }
    xadd_all(&redis, &env.stream, &events).await;
    assert!(settled(env, &redis).await);
    let supports: Vec<String> = pg
        .column(
            "SELECT DISTINCT language_support FROM posts ORDER BY 1",
            &[],
        )
        .await;
    assert_eq!(supports, ["supported", "unsupported", "unverified"]);
    // A deletion whose batch committed after its post's is marked by the upkeep.
    assert!(deleted_posts_reach(&pg, 4).await);
    assert_eq!(rollups(&pg).await, recount(&pg).await);

    // Deleted after they were stored, one of each class.
    let later: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, (class, _))| deletion(&format!("{class}-1-{i}"), now))
        .collect();
    xadd_all(&redis, &env.stream, &later).await;
    assert!(settled(env, &redis).await);
    assert!(deleted_posts_reach(&pg, 8).await);
    assert_eq!(rollups(&pg).await, recount(&pg).await);

    // Deletions that raced their posts (committed where neither batch saw the other), one of
    // each class: repaired by the upkeep, through the same definition.
    for (i, (class, _)) in texts.iter().enumerate() {
        pg.execute(
            "INSERT INTO post_deletions (post_id, at, stream_id) VALUES ($1, now(), 'raced')",
            &[&format!("{class}-2-{i}")],
        )
        .await
        .unwrap();
    }
    assert!(deleted_posts_reach(&pg, 12).await);
    assert_eq!(rollups(&pg).await, recount(&pg).await);
    // Everything is deleted: every rollup is back to zero.
    assert!(rollups(&pg).await.is_empty(), "{:?}", rollups(&pg).await);
    app.shutdown().await;
}

/// Backends of this database waiting for an advisory lock (`advisory`), or for another lock
/// (a row's).
async fn lock_waits(pg: &tokio_postgres::Client, advisory: bool) -> i64 {
    pg.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND (wait_event = 'advisory') = $1",
        &[&advisory],
    )
    .await
}

/// A held engagement whose post is stored is released by the settling pass, which counts it if
/// the post is live as it sees it. A batch deleting the post, in flight meanwhile, sees the
/// engagement held and leaves it: whichever of the two commits second must see the other, or
/// the engagement stays in the rollups of a deleted post. The deleting batch is kept inside
/// its statement (a session holds the post's row) while the pass runs.
#[actix_rt::test]
async fn an_engagement_released_while_its_post_is_deleted_never_stays_in_the_rollups() {
    let app = spawn_app().await;
    let redis = app.redis().await;
    let now = Utc::now();
    xadd_all(
        &redis,
        &app.env.stream,
        &[post_at("held-for", "I love it", now)],
    )
    .await;
    assert!(settled(&app.env, &redis).await);
    let high_churn = app.env.settings().metrics.high_churn_threshold;
    // From here only this test settles and deletes.
    let env = app.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pg = env.pg().await;
    // Held as a batch that committed beside the post's, and could not see it, leaves it.
    pg.execute(
        "INSERT INTO engagements (key, post_id, kind, at, count, stream_id, held) \
         VALUES ('id:held-like', 'held-for', 'like', $1, 5, 'raced', true)",
        &[&now],
    )
    .await
    .unwrap();
    let holder = env.pg().await;
    holder
        .batch_execute("BEGIN; SELECT 1 FROM posts WHERE id = 'held-for' FOR UPDATE")
        .await
        .unwrap();

    let pool = pulse::db::pool(&env.database_url, 2).unwrap();
    let deleting = actix_rt::spawn(async move {
        let admission = pulse::db::rollup_keys::KeyAdmission::new(100);
        let trust = pulse::models::producer::Trust::new(&pulse::models::producer::default_trust());
        let options = pulse::db::batch::WriteOptions {
            stream: "raced",
            high_churn,
            admission: &admission,
            trust: &trust,
        };
        let batch = pulse::actors::messages::AnalyzedBatch {
            deletions: vec![pulse::models::event::StreamedDeletion {
                entry_id: "1-0".into(),
                producer: pulse::models::producer::STREAM.into(),
                deletion: pulse::models::event::Deletion {
                    post_id: "held-for".into(),
                    at: now,
                },
            }],
            ..Default::default()
        };
        pulse::actors::store::write(&pool, &options, &batch)
            .await
            .map(|_| ())
    });
    assert!(
        wait_until(WAIT, || async { lock_waits(&pg, false).await == 1 }).await,
        "the deleting batch waits on the post's row"
    );
    let held: bool = pg
        .scalar(
            "SELECT held FROM engagements WHERE key = 'id:held-like'",
            &[],
        )
        .await;
    assert!(held, "nothing released the engagement before the pass");

    let mut client = env.pg().await;
    let settling = actix_rt::spawn(async move {
        let trust = pulse::models::producer::Trust::new(&pulse::models::producer::default_trust());
        let start = pulse::db::deletions::HeldCursor::default();
        pulse::db::deletions::settle_held(&mut client, trust.pairs(), 3_600.0, &start).await
    });
    // The pass either runs now, or waits for the deleting batch.
    assert!(
        wait_until(WAIT, || async {
            settling.is_finished() || lock_waits(&pg, true).await == 1
        })
        .await
    );
    holder.batch_execute("COMMIT").await.unwrap();
    deleting.await.unwrap().expect("the deletion is stored");
    let (pass, _) = settling.await.unwrap().expect("the pass runs");
    assert_eq!(pass.released, 1, "{pass:?}");

    assert!(deleted_posts_reach(&pg, 1).await);
    assert_eq!(rollups(&pg).await, recount(&pg).await);
    assert!(rollups(&pg).await.is_empty(), "{:?}", rollups(&pg).await);
}

#[actix_rt::test]
async fn engagements_wait_for_their_post_and_are_dropped_when_it_never_comes() {
    let app = spawn_app_tuned(|s| {
        s.ingest.unknown_post_hold_secs = 2;
        quick_scores(s);
    })
    .await;
    let (env, redis) = (&app.env, app.redis().await);
    let now = Utc::now();
    let shares = |post: &str, n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| engagement(&format!("{post}-{i}"), post, "share", 1, now))
            .collect()
    };
    xadd_all(&redis, &env.stream, &shares("ghost", 30)).await;
    xadd_all(&redis, &env.stream, &shares("late", 4)).await;
    assert!(read_all(env, &redis).await);
    // Held engagements are counted nowhere and make no trending post.
    let (_, overall) = app.get("/api/v1/metrics/overall?window=1h").await;
    assert_eq!(overall["stats"]["engagement"]["shares"], 0, "{overall}");
    // The late post arrives: its engagements count from then on.
    xadd_all(&redis, &env.stream, &[post_at("late", "fine phone", now)]).await;
    assert!(
        wait_until(WAIT, || async {
            let (_, o) = app.get("/api/v1/metrics/overall?window=1h").await;
            o["stats"]["engagement"]["shares"] == 4
        })
        .await
    );
    // The ghost never comes: dropped after the hold, and counted.
    assert!(settled(env, &redis).await);
    assert_gone_from_trending(&app, "ghost", 50).await;
    // The counter rises once the statement that dropped them returned.
    let counted = wait_until(WAIT, || async {
        metrics_text(&app)
            .await
            .contains("pulse_events_refused_total{reason=\"unknown_post\"} 30")
    })
    .await;
    assert!(counted, "{}", metrics_text(&app).await);
    let (_, o) = app.get("/api/v1/metrics/overall?window=1h").await;
    assert_eq!(o["stats"]["engagement"]["shares"], 4, "{o}");

    // A forged count is refused at the door on every path.
    let huge = engagement("huge", "late", "share", 1_000_001, now);
    let (status, body) = http_post(&app, "/api/v1/events", &huge.to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("count"), "{body}");
    xadd_all(&redis, &env.stream, &[huge]).await;
    assert!(settled(env, &redis).await);
    let dead = env.dead_letters_text(&redis).await;
    assert!(dead.contains("count"), "{dead}");
    assert_metrics_hold(
        &app,
        &["pulse_dead_letters_total{reason=\"invalid_field\"} 1"],
    )
    .await;
    app.shutdown().await;
}

/// A deletion looks up the alerts quoting its posts among those fired since the posts' own
/// date, which their producer chose: a post dated 1970, then deleted, read the evidence of
/// every alert kept, once per deletion. The lookup goes by the quoted ids' index.
#[actix_rt::test]
async fn the_alerts_quoting_a_deleted_post_are_found_by_its_id() {
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    pg.batch_execute(
        "INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence) \
         SELECT 'r', 'negativity', 'warning', 'all', 'all', 1, 1, \
                jsonb_build_object('top_posts', jsonb_build_array( \
                    jsonb_build_object('id', 'p' || g), jsonb_build_object('id', 'q' || g))) \
         FROM generate_series(1, 5000) g; \
         ANALYZE alerts;",
    )
    .await
    .unwrap();
    let ids = vec!["q4321"];
    let long_ago = DateTime::<Utc>::UNIX_EPOCH;
    let plan: Vec<String> = pg
        .query(
            &format!("EXPLAIN {}", pulse::db::alerts::QUOTING),
            &[&ids, &long_ago],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("alerts_quoted_posts_idx")),
        "{plan:#?}"
    );
    let found = pulse::db::alerts::quoting(&pg, &ids, long_ago)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].evidence["top_posts"][1]["id"], "q4321");
}
