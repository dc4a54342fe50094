//! Topics on the real pipeline: the documented cases through real posts, the API's answers to
//! good and hostile requests, previews, who may write topics, and a topic on every surface;
//! per-topic rollups, what a topic keeps and what a process reloads have modules of their own.

use crate::common;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use pulse::auth::Role;
use serde_json::{json, Value};

use super::deletions::{post_at, settled, xadd_all};

mod history;
mod preview_costs;
mod reloads;
mod rollups;

pub(super) use rollups::{retags_done, topic_recount, topic_rollups};

const WAIT: Duration = Duration::from_secs(60);

/// A Pulse with `topics` (name, query) created and held by its matcher; their ids.
pub(super) async fn app_with_topics<const N: usize>(
    topics: [(&str, &str); N],
) -> (TestApp, [i64; N]) {
    let app = spawn_app().await;
    let mut ids = [0; N];
    for (id, (name, query)) in ids.iter_mut().zip(topics) {
        *id = app.create_topic(name, query).await;
    }
    assert!(matcher_holds(&app, N).await);
    (app, ids)
}

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

/// The topic list is read a page at a time: a full deployment's topics in one answer, with
/// queries of up to 4,096 characters, were 170 MB a request. Every topic comes once across the
/// pages, and a bad limit is refused.
#[actix_rt::test]
async fn the_topic_list_pages_through_every_topic_once() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for n in 0..5 {
        let (status, topic) = app
            .post(
                "/api/v1/topics",
                &json!({"name": format!("paged-{n}"), "query": format!("word{n}")}),
            )
            .await;
        assert_eq!(status, 201, "{topic}");
        created.push(topic["id"].as_i64().unwrap());
    }
    let mut listed = Vec::new();
    let mut path = "/api/v1/topics?limit=2".to_string();
    loop {
        let page = app.get_ok(&path).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        listed.extend(items.iter().map(|t| t["id"].as_i64().unwrap()));
        match page["next_after"].as_i64() {
            Some(after) => path = format!("/api/v1/topics?limit=2&after={after}"),
            None => break,
        }
    }
    assert_eq!(listed, created);
    let whole = app.get_ok("/api/v1/topics").await;
    assert_eq!(whole["items"].as_array().unwrap().len(), 5, "{whole}");
    assert!(whole["next_after"].is_null(), "{whole}");
    for bad in ["limit=0", "limit=1001", "limit=x"] {
        let (status, body) = app.get(&format!("/api/v1/topics?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    app.shutdown().await;
}
