//! Topics on the real pipeline: the documented cases through real posts, the API's answers to
//! good and hostile requests, per-topic rollups against a recount after additions, deletions,
//! edits and re-tagging, previews, and who may write topics.

use crate::common;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use pulse::auth::Role;
use pulse::config::Settings;
use serde_json::{json, Value};

use super::deletions::{deletion, engagement, keyed, post_at, settled, xadd_all, Keyed};

mod preview_costs;

const WAIT: Duration = Duration::from_secs(60);

/// Waits until this process's matcher holds exactly the topics at the current revision.
pub(super) async fn matcher_holds(app: &TestApp, topics: usize) -> bool {
    let pg = app.env.pg().await;
    wait_until(WAIT, || async {
        let revision = pulse::db::topics::revision(&pg).await.unwrap();
        let live = app.pipeline().topics();
        live.revision() == revision as u64 && live.get().len() == topics
    })
    .await
}

/// The topics a stored post carries.
async fn topics_of(app: &TestApp, id: &str) -> Vec<i64> {
    let path = format!("/api/v1/posts/{id}");
    // The API's connection rests after a long read (a search over floods, say), and a read
    // meanwhile is answered 503 `busy`, to be asked again shortly.
    let mut asked = app.get(&path).await;
    for _ in 0..30 {
        if asked.0 != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        asked = app.get(&path).await;
    }
    let (status, body) = asked;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_value(body["topics"].clone()).expect("topics")
}

#[actix_rt::test]
async fn every_documented_case_holds_for_posts_sent_through_the_pipeline() {
    let app = spawn_app().await;
    let cases = pulse::topics::cases::cases();
    let mut ids: BTreeMap<String, i64> = BTreeMap::new();
    for case in &cases {
        if !ids.contains_key(&case.query) {
            let id = app
                .create_topic(&format!("case {}", ids.len()), &case.query)
                .await;
            ids.insert(case.query.clone(), id);
        }
    }
    assert!(matcher_holds(&app, ids.len()).await);
    let now = Utc::now();
    let events: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(n, case)| {
            let mut post = json!({
                "type": "post", "id": format!("case-{n}"),
                "platform": case.get("platform").unwrap_or("twitter"),
                "author": {"id": case.get("author").unwrap_or("someone"), "followers": 10},
                "text": case.text, "created_at": now.to_rfc3339(),
            });
            for field in ["lang", "product", "channel", "url"] {
                if let Some(v) = case.get(field) {
                    post[field] = json!(v);
                }
            }
            if case.get("country").is_some() || case.get("city").is_some() {
                post["geo"] = json!({"country": case.get("country"), "city": case.get("city")});
            }
            post
        })
        .collect();
    let redis = app.redis().await;
    xadd_all(&redis, &app.env.stream, &events).await;
    assert!(app.wait_for_posts(cases.len() as i64, WAIT).await);
    let mut wrong = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let topics = topics_of(&app, &format!("case-{n}")).await;
        if topics.contains(&ids[&case.query]) != case.matches {
            wrong.push(format!("`{}` on `{}`: {topics:?}", case.query, case.text));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    app.shutdown().await;
}

#[actix_rt::test]
async fn topics_are_created_versioned_paused_and_deleted_and_bad_ones_refused() {
    let app = spawn_app().await;
    let (status, created) = app
        .post(
            "/api/v1/topics",
            &json!({"name": "Pulse Phone", "query": "\"pulse phone\" NOT recall"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["version"], 1);
    assert_eq!(created["status"], "active");

    // Another topic of the same name, in any case, is refused.
    let (status, body) = app
        .post(
            "/api/v1/topics",
            &json!({"name": "pulse phone", "query": "phone"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("name_taken"))
    );

    // Editing the query is a new version; editing the name alone is not.
    let (status, edited) = app
        .patch(
            &format!("/api/v1/topics/{id}"),
            &json!({"query": "\"pulse phone\""}),
        )
        .await;
    assert_eq!(
        (status, edited["version"].as_i64()),
        (200, Some(2)),
        "{edited}"
    );
    let (_, renamed) = app
        .patch(&format!("/api/v1/topics/{id}"), &json!({"name": "Phone"}))
        .await;
    assert_eq!(
        (renamed["name"].as_str(), renamed["version"].as_i64()),
        (Some("Phone"), Some(2))
    );
    let versions = app.get_ok(&format!("/api/v1/topics/{id}/versions")).await;
    let queries: Vec<&str> = strings(&versions["items"], "query");
    assert_eq!(queries, ["\"pulse phone\"", "\"pulse phone\" NOT recall"]);

    let (_, paused) = app
        .patch(
            &format!("/api/v1/topics/{id}"),
            &json!({"status": "paused"}),
        )
        .await;
    assert_eq!(paused["status"], "paused");
    assert!(
        matcher_holds(&app, 0).await,
        "a paused topic is not matched"
    );
    let listed = app.get_ok("/api/v1/topics").await;
    assert_eq!(listed["items"][0]["status"], "paused");

    assert_eq!(app.delete(&format!("/api/v1/topics/{id}")).await, 204);
    assert_eq!(app.get(&format!("/api/v1/topics/{id}")).await.0, 404);
    assert_eq!(app.delete(&format!("/api/v1/topics/{id}")).await, 404);
    // Its name is free again; its id is not given again.
    let again = app.create_topic("Phone", "phone").await;
    assert!(again > id);

    // Bad queries: the position and what was expected; hostile ones too, never a 500.
    for (query, position) in [
        ("(apple OR pear", 14),
        ("apple AND", 9),
        ("NOT apple", 0),
        ("apple OR NOT pear", 0),
        ("*", 0),
        ("a NEAR/1000000 b", 2),
        ("platform:myspace", 9),
        ("\"open", 5),
    ] {
        let (status, body) = app
            .post("/api/v1/topics", &json!({"name": "bad", "query": query}))
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(
            body["error"]["code"], "invalid_topic_query",
            "{query}: {body}"
        );
        assert_eq!(
            body["error"]["details"]["position"], position,
            "{query}: {body}"
        );
        assert!(body["error"]["details"]["expected"].is_string(), "{body}");
    }
    let hostile = [
        "(".repeat(10_000) + "a" + &")".repeat(10_000),
        format!("{}a{}", "(".repeat(2_000), ")".repeat(2_000)),
        "a ".repeat(3_000),
        vec!["w"; 400].join(" OR "),
        "a\u{0}b".to_string(),
        "a NEAR/2 NOT b".to_string(),
        "(x NEAR/1 y) NEAR/3 -z".to_string(),
        "\"".to_string(),
        "language:".to_string(),
    ];
    for query in hostile {
        let (status, body) = app
            .post(
                "/api/v1/topics",
                &json!({"name": "hostile", "query": query}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid_topic_query", "{body}");
    }
    // A megabyte of query is over the body limit before it reaches the parser.
    let (status, body) = app
        .post(
            "/api/v1/topics",
            &json!({"name": "big", "query": "a ".repeat(512 * 1024)}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    for name in ["", "   ", "a\u{202E}b", &"n".repeat(201)] {
        let (status, body) = app
            .post("/api/v1/topics", &json!({"name": name, "query": "ok"}))
            .await;
        assert_error(status, &body, 400, "invalid_topic", format!("{name:?}"));
    }
    let (status, _) = app
        .post(
            "/api/v1/topics",
            &json!({"name": "x", "query": "ok", "colour": "red"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(app.get("/api/v1/topics/not-a-number").await.0, 400);
    app.shutdown().await;
}

/// The rollups of the dimension `topic`.
pub(super) async fn topic_rollups(pg: &tokio_postgres::Client) -> Keyed {
    super::deletions::rollups(pg)
        .await
        .into_iter()
        .filter(|((dimension, _), _)| dimension == "topic")
        .collect()
}

/// The same, recounted from the posts that are not deleted (a post counts under each topic
/// in its `topics`, when a model understands its language) and their engagements that are
/// not held, written out here independently of the database's own definition.
pub(super) async fn topic_recount(pg: &tokio_postgres::Client) -> Keyed {
    let rows = pg
        .query(
            "WITH p AS (SELECT p.*, t AS topic FROM posts p CROSS JOIN LATERAL unnest(p.topics) t \
                 WHERE p.deleted_at IS NULL AND p.language_support <> 'unsupported'), \
             scored AS ( \
                 SELECT topic, count(*) AS posts, \
                     count(*) FILTER (WHERE sentiment_label = 'negative') AS negative, \
                     count(*) FILTER (WHERE sentiment_label = 'neutral') AS neutral, \
                     count(*) FILTER (WHERE sentiment_label = 'positive') AS positive, \
                     sum(sentiment_score::float8) AS sentiment \
                 FROM p GROUP BY 1), \
             engaged AS ( \
                 SELECT t AS topic, \
                     sum(e.count) FILTER (WHERE e.kind = 'like') AS likes, \
                     sum(e.count) FILTER (WHERE e.kind = 'share') AS shares \
                 FROM engagements e JOIN posts q ON q.id = e.post_id \
                 CROSS JOIN LATERAL unnest(q.topics) t \
                 WHERE NOT e.held AND q.deleted_at IS NULL GROUP BY 1) \
             SELECT 'topic', COALESCE(s.topic, g.topic)::text, \
                 COALESCE(s.posts, 0)::int8, COALESCE(s.negative, 0)::int8, \
                 COALESCE(s.neutral, 0)::int8, COALESCE(s.positive, 0)::int8, \
                 round(COALESCE(s.sentiment, 0) * 1000)::int8, COALESCE(g.likes, 0)::int8, \
                 COALESCE(g.shares, 0)::int8 \
             FROM scored s FULL JOIN engaged g ON g.topic = s.topic",
            &[],
        )
        .await
        .unwrap();
    keyed(&rows)
}

/// Waits until every re-tagging has ended; whether they all finished.
pub(super) async fn retags_done(pg: &tokio_postgres::Client) -> bool {
    wait_until(WAIT, || async {
        pg.scalar::<i64>(
            "SELECT count(*) FROM topic_retags WHERE status IN ('queued', 'running')",
            &[],
        )
        .await
            == 0
    })
    .await
}

#[actix_rt::test]
async fn per_topic_figures_equal_a_recount_through_additions_deletions_edits_and_retagging() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    let pg = env.pg().await;
    let phone = app.create_topic("Phone", "phone").await;
    let battery = app.create_topic("Battery", "battery OR screen").await;
    assert!(matcher_holds(&app, 2).await);
    let now = Utc::now();
    let texts = [
        "This phone is the worst, it broke after a day",
        "I love the new phone, great battery",
        "The screen cracked, awful",
        "Nothing to see here, just lunch",
    ];
    let mut events = Vec::new();
    for round in 0..3 {
        for (i, text) in texts.iter().enumerate() {
            let id = format!("p-{round}-{i}");
            let created = now - TimeDelta::minutes(round * 3 + i as i64);
            events.push(post_at(&id, text, created));
            events.push(engagement(&format!("{id}-l"), &id, "like", 2, created));
            events.push(engagement(&format!("{id}-s"), &id, "share", 1, created));
        }
    }
    xadd_all(&redis, &env.stream, &events).await;
    assert!(settled(env, &redis).await);
    assert_eq!(topics_of(&app, "p-0-1").await, vec![phone, battery]);
    assert_eq!(topics_of(&app, "p-0-3").await, Vec::<i64>::new());
    let recount = topic_recount(&pg).await;
    assert_eq!(recount[&("topic".into(), phone.to_string())][0], 6);
    assert_eq!(topic_rollups(&pg).await, recount);

    // Deleted posts leave their topics' figures.
    let gone: Vec<Value> = (0..2).map(|i| deletion(&format!("p-1-{i}"), now)).collect();
    xadd_all(&redis, &env.stream, &gone).await;
    assert!(settled(env, &redis).await);
    assert!(
        wait_until(WAIT, || async {
            topic_rollups(&pg).await == topic_recount(&pg).await
        })
        .await,
        "{:?} != {:?}",
        topic_rollups(&pg).await,
        topic_recount(&pg).await
    );

    // An edit: new posts are matched against version 2, stored ones keep version 1.
    let (status, _) = app
        .patch(
            &format!("/api/v1/topics/{phone}"),
            &json!({"query": "phone NOT broke"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(matcher_holds(&app, 2).await);
    let later = vec![
        post_at("late-0", "my phone broke again", now),
        post_at("late-1", "a phone for lunch", now),
    ];
    xadd_all(&redis, &env.stream, &later).await;
    assert!(settled(env, &redis).await);
    assert_eq!(topics_of(&app, "late-0").await, Vec::<i64>::new());
    let post = app.get_ok("/api/v1/posts/late-1").await;
    assert_eq!(
        (post["topics"].clone(), post["topic_versions"].clone()),
        (json!([phone]), json!([2]))
    );
    let old = app.get_ok("/api/v1/posts/p-0-0").await;
    assert_eq!(old["topic_versions"], json!([1]));
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);

    // Re-tagging applies version 2 to the stored posts: "broke" leaves, the rest move to v2.
    let (status, job) = app
        .post(
            &format!("/api/v1/topics/{phone}/retags"),
            &json!({"days": 1}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert!(retags_done(&pg).await);
    let job = app
        .get_ok(&format!("/api/v1/topics/{phone}/retags/{}", job["id"]))
        .await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["removed"], 2, "{job}");
    assert_eq!(job["scanned"], 12, "{job}");
    assert_eq!(topics_of(&app, "p-0-0").await, Vec::<i64>::new());
    let kept = app.get_ok("/api/v1/posts/p-0-1").await;
    assert_eq!(kept["topic_versions"], json!([2, 1]));
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);

    // A re-tagging of a topic matching more: the battery topic widened to every phone post.
    app.patch(
        &format!("/api/v1/topics/{battery}"),
        &json!({"query": "battery OR screen OR phone"}),
    )
    .await;
    let (status, _) = app
        .post(
            &format!("/api/v1/topics/{battery}/retags"),
            &json!({"days": 1}),
        )
        .await;
    assert_eq!(status, 202);
    assert!(retags_done(&pg).await);
    assert_eq!(topics_of(&app, "p-2-0").await, vec![battery]);
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);

    // The API's figures of a topic are its rollups'.
    let overall = app
        .get_ok(&format!(
            "/api/v1/metrics/overall?window=1h&topic={battery}"
        ))
        .await;
    let recount = topic_recount(&pg).await;
    assert_eq!(
        overall["stats"]["posts"].as_i64(),
        Some(recount[&("topic".into(), battery.to_string())][0])
    );
    let listed = app
        .get_ok(&format!("/api/v1/posts?topic={battery}&limit=500"))
        .await;
    assert_eq!(
        listed["items"].as_array().unwrap().len() as i64,
        recount[&("topic".into(), battery.to_string())][0]
    );
    let share = app.get_ok("/api/v1/metrics/topics?window=1h").await;
    let names: Vec<&str> = strings(&share["items"], "name");
    assert_eq!(names.len(), 2);
    let volume: f64 = sum_of(&share["items"], |t| {
        t["share_of_voice"]["volume"].as_f64().unwrap()
    });
    assert!((volume - 1.0).abs() < 1e-9, "{share}");
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_preview_counts_matches_and_the_near_misses_a_not_cuts() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    let now = Utc::now();
    let mut events = Vec::new();
    for i in 0..30 {
        let text = match i % 3 {
            0 => "a cold coke on the beach",
            1 => "coke is a drug, avoid cocaine",
            _ => "pepsi please",
        };
        events.push(post_at(
            &format!("v-{i}"),
            text,
            now - TimeDelta::minutes(i),
        ));
    }
    xadd_all(&redis, &env.stream, &events).await;
    assert!(app.wait_for_posts(30, WAIT).await);
    let (status, preview) = app
        .post(
            "/api/v1/topic-preview",
            &json!({"query": "coke NOT (drug OR cocaine)", "samples": 3}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["scanned"], 30);
    assert_eq!(preview["complete"], true);
    assert_eq!(preview["matches"]["count"], 10);
    assert_eq!(preview["near_misses"]["count"], 10);
    assert_eq!(preview["matches"]["samples"].as_array().unwrap().len(), 3);
    let near = preview["near_misses"]["samples"][0]["text"]
        .as_str()
        .unwrap();
    assert!(near.contains("drug"), "{preview}");
    let (status, body) = app
        .post(
            "/api/v1/topic-preview",
            &json!({"query": "coke AND", "hours": 24}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["details"]["position"].as_i64()),
        (400, Some(8))
    );
    for bad in [
        json!({"query": "coke", "hours": 0}),
        json!({"query": "coke", "samples": 51}),
    ] {
        assert_eq!(
            app.post("/api/v1/topic-preview", &bad).await.0,
            400,
            "{bad}"
        );
    }
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_topic_deleted_while_posts_are_matched_loses_nothing() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    let pg = env.pg().await;
    let id = app.create_topic("Phone", "phone").await;
    assert!(matcher_holds(&app, 1).await);
    let now = Utc::now();
    let first: Vec<Value> = (0..200)
        .map(|i| post_at(&format!("d-{i}"), "a phone", now))
        .collect();
    xadd_all(&redis, &env.stream, &first).await;
    // Deleted while those posts are being matched and stored.
    assert_eq!(app.delete(&format!("/api/v1/topics/{id}")).await, 204);
    let second: Vec<Value> = (200..300)
        .map(|i| post_at(&format!("d-{i}"), "a phone", now))
        .collect();
    xadd_all(&redis, &env.stream, &second).await;
    assert!(settled(env, &redis).await);
    assert_eq!(env.post_count().await, 300);
    assert!(matcher_holds(&app, 0).await);
    // What was matched before the deletion reached this process stays, counted exactly.
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);
    let after: Vec<Value> = vec![post_at("d-last", "a phone", now)];
    xadd_all(&redis, &env.stream, &after).await;
    assert!(settled(env, &redis).await);
    assert_eq!(topics_of(&app, "d-last").await, Vec::<i64>::new());
    app.shutdown().await;
}

/// Every edit of a query kept its version for good: an editor alternating two long queries
/// grew `topic_versions` without bound. A topic keeps its newest versions, as many as are
/// listed.
#[actix_rt::test]
async fn a_topic_keeps_its_newest_versions_however_often_its_query_changes() {
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    let id = app.create_topic("Flip", "flip").await;
    let other = app.create_topic("Other", "other").await;
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    let client = pool.get().await.unwrap();
    let kept = pulse::db::topics::MAX_VERSIONS_LISTED;
    let (one, two) = (format!("flip {}", "a".repeat(4_000)), "flop".to_string());
    let edits = kept as usize + 10;
    for i in 0..edits {
        let query = if i % 2 == 0 { &one } else { &two };
        let edit = pulse::db::topics::TopicEdit {
            query: Some(query),
            ..Default::default()
        };
        let edited = pulse::db::topics::update(&**client, id, &edit, Some("editor"))
            .await
            .unwrap()
            .expect("the topic is live");
        assert_eq!(edited.version as usize, i + 2);
    }
    let versions: Vec<i32> = pg
        .column(
            "SELECT version FROM topic_versions WHERE topic_id = $1 ORDER BY version DESC",
            &[&id],
        )
        .await;
    let newest = edits as i32 + 1;
    let expected: Vec<i32> = (newest - kept as i32 + 1..=newest).rev().collect();
    assert_eq!(versions, expected);
    let listed = app.get_ok(&format!("/api/v1/topics/{id}/versions")).await;
    let listed: Vec<i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(listed.len() as i64, kept);
    assert_eq!(listed[0], newest as i64);
    // Another topic's versions are its own.
    let others: i64 = pg
        .scalar(
            "SELECT count(*) FROM topic_versions WHERE topic_id = $1",
            &[&other],
        )
        .await;
    assert_eq!(others, 1);
    app.shutdown().await;
}

/// Rows of `topic` in each table that holds a topic's own rows.
async fn rows_of_topic(pg: &tokio_postgres::Client, topic: i64) -> Vec<(&'static str, i64)> {
    let mut rows = Vec::new();
    for (table, column) in [
        ("topics", "id"),
        ("topic_versions", "topic_id"),
        ("topic_relevance", "topic_id"),
        ("topic_retags", "topic_id"),
    ] {
        let n: i64 = pg
            .scalar(
                &format!("SELECT count(*) FROM {table} WHERE {column} = $1"),
                &[&topic],
            )
            .await;
        rows.push((table, n));
    }
    rows
}

/// A deleted topic's rows were kept for good, so creating and deleting topics in a loop grew
/// the table past `topics.max_topics` however few were live, and every process read all of
/// them each second for their revision. Retention purges a deleted topic once nothing names
/// it, while a stored post that carries it keeps it, and the revision processes poll neither
/// moves with the purge nor misses a change after it.
#[actix_rt::test]
async fn a_deleted_topics_rows_go_once_nothing_names_it() {
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    let carried = app.create_topic("Phone", "phone").await;
    let bare = app.create_topic("Tablet", "tablet").await;
    assert!(matcher_holds(&app, 2).await);
    app.send_events(&[post_json("p-1", "a new phone")]).await;
    assert!(app.wait_for_posts(1, WAIT).await);
    assert_eq!(topics_of(&app, "p-1").await, vec![carried]);
    // The bare topic gets rows of every kind a topic has: versions, relevance, a re-tagging.
    let path = format!("/api/v1/topics/{bare}");
    assert_eq!(app.patch(&path, &json!({"query": "tablets"})).await.0, 200);
    let threshold = json!({"threshold": 0.7});
    let put = reqwest::Method::PUT;
    let (status, body) = app
        .request(put, &format!("{path}/relevance"), Some(&threshold), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post(&format!("{path}/retags"), &json!({"days": 1}))
        .await;
    assert_eq!(status, 202, "{body}");
    for topic in [carried, bare] {
        assert_eq!(app.delete(&format!("/api/v1/topics/{topic}")).await, 204);
    }
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    let policy = pulse::actors::retention::RetentionPolicy::of(&Settings::default().store);

    // Just deleted, both stay: a training or a re-tagging begun before may still write.
    pulse::actors::retention::sweep(&pool, &policy)
        .await
        .unwrap();
    assert_eq!(rows_of_topic(&pg, bare).await[0], ("topics", 1));
    pg.execute(
        "UPDATE topics SET deleted_at = deleted_at - make_interval(secs => $1::float8 + 60)",
        &[&pulse::db::topics::PURGE_AFTER_SECS],
    )
    .await
    .unwrap();
    let revision = pulse::db::topics::revision(&pg).await.unwrap();
    pulse::actors::retention::sweep(&pool, &policy)
        .await
        .unwrap();
    let none: Vec<(&str, i64)> = [
        "topics",
        "topic_versions",
        "topic_relevance",
        "topic_retags",
    ]
    .into_iter()
    .map(|t| (t, 0))
    .collect();
    assert_eq!(rows_of_topic(&pg, bare).await, none, "nothing names it");
    assert_eq!(
        rows_of_topic(&pg, carried).await[0],
        ("topics", 1),
        "a stored post carries it"
    );
    assert_eq!(
        pulse::db::topics::revision(&pg).await.unwrap(),
        revision,
        "a purge changes nothing a process holds"
    );

    // The post gone (as retention takes it), the topic goes too.
    pg.execute("DELETE FROM posts WHERE id = 'p-1'", &[])
        .await
        .unwrap();
    pulse::actors::retention::sweep(&pool, &policy)
        .await
        .unwrap();
    assert_eq!(rows_of_topic(&pg, carried).await, none);

    // A change after the purges reaches the matcher, under an id never given before.
    let next = app.create_topic("Phone", "phone").await;
    assert!(next > bare);
    assert!(matcher_holds(&app, 1).await);
    app.shutdown().await;
}

/// Adopts a model for `topic` as training does, with a threshold of 0.5.
async fn adopt_model(pool: &deadpool_postgres::Pool, topic: i64) {
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    pulse::db::relevance::set_threshold(&tx, topic, 0.5)
        .await
        .unwrap();
    let weights: Vec<u8> = [(3u32, 0.5f32), (9, -0.25)]
        .iter()
        .flat_map(|(i, w)| i.to_le_bytes().into_iter().chain(w.to_le_bytes()))
        .collect();
    let trained = pulse::db::relevance::Trained {
        topic_id: topic,
        changes: 1,
        labels: 10,
        related: 5,
        through_label: 0,
        accuracy: 1.0,
        incumbent: 0.5,
        adopted: true,
        reason: "adopted",
        weights: Some((0.1, weights)),
    };
    pulse::db::relevance::record(&tx, &trained).await.unwrap();
    tx.commit().await.unwrap();
}

/// Any change of one topic (a rename, a threshold, an adoption) had every process read every
/// active query and compile it, and read and decode every adopted model, weights and all. A
/// process reads only what it does not hold: a rename nothing, an edited query that query
/// alone, an adoption that model alone; the other topics' models and parsed queries are the
/// ones it held.
#[actix_rt::test]
async fn a_process_reads_only_the_topics_and_models_that_changed() {
    use pulse::actors::topics::{refresh, Reload};
    use std::sync::Arc;
    let app = spawn_app().await;
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    let (a, b) = (
        app.create_topic("Apple", "apple").await,
        app.create_topic("Banana", "banana").await,
    );
    adopt_model(&pool, a).await;
    adopt_model(&pool, b).await;
    // A process of its own, loading as its watcher would.
    let live = pulse::topics::LiveTopics::new();
    let loaded = refresh(&pool, &live).await.unwrap();
    let all = Reload {
        rebuilt: true,
        queries: 2,
        models: 2,
    };
    assert_eq!(loaded, Some(all));
    let before = live.loaded();
    let model = |l: &pulse::topics::Loaded, topic: i64| l.filters.get(topic).unwrap().model.clone();
    let parsed = |l: &pulse::topics::Loaded, topic: i64| {
        l.parsed.as_ref().unwrap()[&topic].1.clone().unwrap()
    };

    let path = format!("/api/v1/topics/{a}");
    assert_eq!(app.patch(&path, &json!({"name": "Apples"})).await.0, 200);
    assert_eq!(refresh(&pool, &live).await.unwrap(), None, "a rename");
    assert!(Arc::ptr_eq(&live.get(), &before.set));

    assert_eq!(app.patch(&path, &json!({"query": "apples"})).await.0, 200);
    let edited = Reload {
        rebuilt: true,
        queries: 1,
        models: 0,
    };
    assert_eq!(refresh(&pool, &live).await.unwrap(), Some(edited));
    let after = live.loaded();
    let versions: Vec<(i64, i32)> = after.set.topics().map(|t| (t.id, t.version)).collect();
    assert_eq!(versions, [(a, 2), (b, 1)]);
    assert!(Arc::ptr_eq(&parsed(&after, b), &parsed(&before, b)));
    for topic in [a, b] {
        assert!(Arc::ptr_eq(&model(&after, topic), &model(&before, topic)));
    }

    let threshold = json!({"threshold": 0.7});
    let put = reqwest::Method::PUT;
    let relevance = format!("/api/v1/topics/{b}/relevance");
    assert_eq!(
        app.request(put, &relevance, Some(&threshold), None).await.0,
        200
    );
    assert_eq!(
        refresh(&pool, &live).await.unwrap(),
        Some(Reload::default())
    );
    let held = live.loaded();
    assert!(Arc::ptr_eq(&held.set, &after.set));
    assert_eq!(held.filters.get(b).unwrap().threshold, 0.7);
    assert!(Arc::ptr_eq(&model(&held, b), &model(&before, b)));

    adopt_model(&pool, a).await;
    let adopted = Reload {
        rebuilt: false,
        queries: 0,
        models: 1,
    };
    assert_eq!(refresh(&pool, &live).await.unwrap(), Some(adopted));
    let held = live.loaded();
    assert!(!Arc::ptr_eq(&model(&held, a), &model(&before, a)));
    assert!(Arc::ptr_eq(&model(&held, b), &model(&before, b)));
    app.shutdown().await;
}

#[actix_rt::test]
async fn editors_write_topics_analysts_read_them_and_every_change_is_audited() {
    let server = common::secured::SecuredServer::start(|_| {}).await;
    let body = json!({"name": "Brand", "query": "brand"});
    let refused = server
        .analyst("POST", "/api/v1/topics", Some(body.clone()))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let created = server
        .call("POST", "/api/v1/topics", Some(Role::Editor), Some(body))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let listed = server.analyst("GET", "/api/v1/topics", None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["items"].as_array().unwrap().len(), 1);
    // An editor reads what an analyst reads, and no more.
    for (path, status) in [("/api/v1/posts", 200), ("/api/v1/admin/keys", 403)] {
        let res = server.call("GET", path, Some(Role::Editor), None).await;
        assert_eq!(res.status, status, "{path}");
    }
    let audited = server
        .count(
            "SELECT count(*) FROM audit_log WHERE action = 'topic.create' \
             AND outcome = 'succeeded' AND actor_role = 'editor'",
        )
        .await;
    assert_eq!(audited, 1);
    let refusals = server
        .count("SELECT count(*) FROM audit_log WHERE actor_role = 'analyst' AND outcome <> 'succeeded'")
        .await;
    assert_eq!(refusals, 1, "the analyst's refused write is audited too");
    server.app.shutdown().await;
}

#[actix_rt::test]
async fn a_rule_on_a_topic_fires_with_the_topics_posts_and_every_surface_takes_the_topic() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.5);
    })
    .await;
    app.remove_rules().await;
    let (env, redis) = (&app.env, app.redis().await);
    let battery = app.create_topic("Battery", "battery").await;
    assert!(matcher_holds(&app, 1).await);
    let rule = app
        .create_rule(&json!({
            "name": "negative about batteries", "kind": "negativity", "dimension": "topic",
            "key": battery.to_string(), "threshold": 0.2, "min_volume": 3, "window_minutes": 60
        }))
        .await;
    let now = Utc::now();
    let mut events = Vec::new();
    for i in 0..6 {
        events.push(post_at(
            &format!("b-{i}"),
            "the battery is awful, terrible, it died",
            now,
        ));
        events.push(post_at(
            &format!("o-{i}"),
            "awful terrible service, I hate it",
            now,
        ));
    }
    xadd_all(&redis, &env.stream, &events).await;
    assert!(settled(env, &redis).await);
    let alerts = app
        .wait_for("/api/v1/alerts?status=firing&limit=50", WAIT, |b| {
            b["items"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["rule_id"] == rule["id"]))
        })
        .await;
    let alert = item_where(&alerts["items"], |x| x["rule_id"] == rule["id"]).clone();
    assert_eq!(
        (alert["dimension"].as_str(), alert["key"].as_str()),
        (Some("topic"), Some(battery.to_string().as_str()))
    );
    let evidence: Vec<&str> = strings(&alert["evidence"]["top_posts"], "id");
    assert!(
        !evidence.is_empty() && evidence.iter().all(|id| id.starts_with("b-")),
        "{alert}"
    );

    // The topic's terms, stories and trending posts are the topic's.
    let terms = app
        .get_ok(&format!("/api/v1/trending/terms?window=1h&topic={battery}"))
        .await;
    let words: Vec<&str> = strings(&terms["terms"], "term");
    assert!(
        words.contains(&"battery") && !words.contains(&"service"),
        "{terms}"
    );
    for path in ["/api/v1/stories", "/api/v1/trending/posts"] {
        let (status, body) = app.get(&format!("{path}?topic={battery}")).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let series = app
        .get_ok(&format!(
            "/api/v1/metrics/timeseries?dimension=topic&key={battery}&bucket=1h"
        ))
        .await;
    let points: i64 = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["posts"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(points, 6, "{series}");
    // A rule on the dimension topic needs a topic's id.
    let (status, _) = app
        .post(
            "/api/v1/alert-rules",
            &json!({"name": "bad", "kind": "negativity", "dimension": "topic", "key": "battery"}),
        )
        .await;
    assert_eq!(status, 400);
    app.shutdown().await;
}

#[actix_rt::test]
async fn share_of_voice_counts_every_topic_however_many() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    let n = 205;
    for i in 0..n {
        app.create_topic(&format!("t{i}"), &format!("word{i}"))
            .await;
    }
    assert!(matcher_holds(&app, n).await);
    let now = Utc::now();
    let events: Vec<Value> = [0, n - 1]
        .iter()
        .flat_map(|i| {
            (0..3).map(move |k| post_at(&format!("w{i}-{k}"), &format!("about word{i}"), now))
        })
        .collect();
    xadd_all(&redis, &env.stream, &events).await;
    assert!(settled(env, &redis).await);
    let share = app.get_ok("/api/v1/metrics/topics?window=1h").await;
    let items = share["items"].as_array().unwrap();
    assert_eq!(items.len(), n, "every live topic is listed");
    let posts = |name: &str| {
        items
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["posts"].as_i64().unwrap())
    };
    assert_eq!(
        (posts("t0"), posts(&format!("t{}", n - 1))),
        (Some(3), Some(3))
    );
    assert_eq!(items[0]["share_of_voice"]["volume"], 0.5);
    app.shutdown().await;
}
