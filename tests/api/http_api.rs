//! The HTTP API against a real Pulse: health, readiness, metrics, event intake, post
//! queries, and the one error shape.

use crate::common;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A [`TestApp`] whose requests also check that every answer carries an `x-request-id`.
struct Api {
    app: TestApp,
}

impl Api {
    async fn start() -> Api {
        Api {
            app: spawn_app().await,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.app.http.get(self.app.url(path)).send().await.unwrap();
        assert!(
            res.headers().contains_key("x-request-id"),
            "x-request-id on {path}"
        );
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post_events(&self, body: String) -> (u16, Value) {
        let res = self
            .app
            .http
            .post(self.app.url("/api/v1/events"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(res.headers().contains_key("x-request-id"));
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

fn assert_error_shape(body: &Value, code: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["details"].is_object(), "{body}");
}

fn post(id: &str, platform: &str, text: &str, minutes_ago: i64) -> Value {
    PostEvent::new(id, text)
        .platform(platform)
        .author("a", 10)
        .minutes_ago(minutes_ago)
        .without(&["geo", "product", "channel"])
        .json()
}

#[actix_rt::test]
async fn health_ready_and_metrics_answer() {
    let api = Api::start().await;
    let (status, body) = api.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    let (status, body) = api.get("/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["postgres"]["status"], "ok");
    assert_eq!(body["redis"]["status"], "ok");
    // The public probe names nothing a stranger could use; the figures are for analysts.
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
    assert_eq!(
        body["sources"],
        serde_json::json!({"total": 0, "connected": 0})
    );
    let (status, body) = api.get("/api/v1/pipeline").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["consumer_group"]["pending"].is_i64(), "{body}");
    assert!(body["consumer_group"]["lag"].is_i64(), "{body}");
    assert!(body["consumer"].is_string(), "{body}");

    let res = api
        .app
        .http
        .get(api.app.url("/health"))
        .header("x-request-id", "caller-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "caller-id-42");

    let text = api
        .app
        .http
        .get(api.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("pulse_http_responses_total"), "{text}");
    api.app.shutdown().await;
}

#[actix_rt::test]
async fn ready_is_503_when_postgres_is_unreachable() {
    let app = spawn_app_tuned(|s| {
        s.database.url = format!("postgres://postgres@127.0.0.1:{}/nothing", free_port());
        s.migrate_on_start = false;
    })
    .await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503);
    assert_eq!(body["postgres"]["status"], "error");
    assert_eq!(body["redis"]["status"], "ok");
    app.shutdown().await;
}

/// PostgreSQL can answer every ping and still refuse every write (a full disk, a read-only
/// standby): readiness follows the store's writes, not only the ping. The database is made
/// read-only for new sessions and the pipeline's sessions are ended, so its next write is
/// refused while `SELECT 1` still answers.
#[actix_rt::test]
async fn ready_is_503_while_postgres_answers_but_refuses_writes() {
    let api = Api::start().await;
    let env = &api.app.env;
    let pg = env.pg().await;
    let end_other_sessions = || async {
        pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    };
    let database = env.database.replace('"', "");
    pg.batch_execute(&format!(
        "ALTER DATABASE \"{database}\" SET default_transaction_read_only = on"
    ))
    .await
    .unwrap();
    end_other_sessions().await;
    let (status, body) = api
        .post_events(post("ro-1", "reddit", "I love it", 1).to_string())
        .await;
    assert_eq!(status, 202, "{body}");
    let refused = wait_until(Duration::from_secs(60), || async {
        let (status, body) = api.get("/ready").await;
        status == 503 && body["postgres"]["status"] == "error" && body["redis"]["status"] == "ok"
    })
    .await;
    assert!(refused, "ready while every write is refused");
    // A write the API makes itself is answered as unavailable, not as a server fault.
    let res = api
        .app
        .http
        .post(api.app.url("/api/v1/topics"))
        .json(&json!({"name": "read-only", "query": "phone"}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_error_shape(&body, "unavailable");

    pg.batch_execute(&format!(
        "ALTER DATABASE \"{database}\" RESET default_transaction_read_only"
    ))
    .await
    .unwrap();
    end_other_sessions().await;
    let stored = wait_until(Duration::from_secs(60), || async {
        pg.scalar::<i64>("SELECT count(*) FROM posts WHERE id = 'ro-1'", &[])
            .await
            == 1
    })
    .await;
    assert!(stored, "the post is stored once writes are taken again");
    // A readiness answer stands for a second, and the store's failures are forgotten at its
    // next commit: ready again within moments, not at the instant the post is seen stored.
    let ready = wait_until(Duration::from_secs(30), || async {
        api.get("/ready").await.0 == 200
    })
    .await;
    assert!(ready, "ready once writes are taken again");
    api.app.shutdown().await;
}

#[actix_rt::test]
async fn events_posted_over_http_are_stored() {
    let api = Api::start().await;
    let (status, body) = api
        .post_events(post("h-1", "reddit", "I love it", 1).to_string())
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);

    let batch = json!([
        post("h-2", "twitter", "so bad, I hate it", 2),
        post("h-3", "tiktok", "ok", 3),
        {"type": "engagement", "post_id": "h-2", "kind": "share", "at": chrono::Utc::now().to_rfc3339()}
    ]);
    let (status, body) = api.post_events(batch.to_string()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["ids"].as_array().unwrap().len(), 3);
    assert!(api.app.env.stored_exactly(3, Duration::from_secs(20)).await);

    let (status, body) = api.get("/api/v1/posts/h-2").await;
    assert_eq!(status, 200);
    assert_eq!(body["platform"], "twitter");
    assert!(body["analysis"]["sentiment"]["label"].is_string());
    api.app.shutdown().await;
}

#[actix_rt::test]
async fn bad_event_requests_get_a_4xx_in_the_error_shape_and_append_nothing() {
    let api = Api::start().await;
    let (status, body) = api.post_events("{not json".into()).await;
    assert_eq!(status, 400);
    assert_error_shape(&body, "invalid_json");

    let mut bad = post("b-2", "myspace", "x", 0);
    bad["platform"] = json!("myspace");
    let batch = json!([post("b-1", "twitter", "fine", 0), bad, {"type": "post"}]);
    let (status, body) = api.post_events(batch.to_string()).await;
    assert_eq!(status, 400);
    assert_error_shape(&body, "invalid_event");
    let errors = body["error"]["details"]["errors"].as_array().unwrap();
    let indexes: Vec<i64> = errors
        .iter()
        .map(|e| e["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, vec![1, 2]);

    let (status, body) = api.post_events("[]".into()).await;
    assert_eq!(status, 400);
    assert_error_shape(&body, "empty_batch");

    let max = api.app.env.settings().http.max_events_per_request;
    let many: Vec<Value> = (0..=max)
        .map(|i| post(&format!("m-{i}"), "twitter", "x", 0))
        .collect();
    let (status, body) = api.post_events(Value::Array(many).to_string()).await;
    assert_eq!(status, 413);
    assert_error_shape(&body, "too_many_events");

    // An array past the limit is counted, not built, whatever the body holds.
    let body_limit = api.app.env.settings().limits.max_events_body_bytes;
    let ones = body_limit / 2 - 1;
    let mut flood = String::with_capacity(body_limit);
    flood.push('[');
    flood.push_str(&"1,".repeat(ones - 1));
    flood.push_str("1]");
    let (status, body) = api.post_events(flood).await;
    assert_eq!(status, 413);
    assert_error_shape(&body, "too_many_events");
    assert_eq!(body["error"]["details"]["received"], ones, "{body}");

    let (status, body) = api.post_events("42".into()).await;
    assert_eq!(status, 400);
    assert_error_shape(&body, "invalid_event");

    let redis = api.app.env.redis().await;
    let len: i64 = fred::prelude::StreamsInterface::xlen(&redis, &api.app.env.stream)
        .await
        .unwrap();
    assert_eq!(len, 0, "no event of a refused request reached the stream");
    api.app.shutdown().await;
}

#[actix_rt::test]
async fn posts_are_listed_newest_first_with_filters_and_keyset_pages() {
    let api = Api::start().await;
    let events: Vec<Value> = (0..7)
        .map(|i| {
            let platform = if i % 2 == 0 { "twitter" } else { "reddit" };
            post(&format!("l-{i}"), platform, "nice", i)
        })
        .collect();
    let (status, _) = api.post_events(Value::Array(events).to_string()).await;
    assert_eq!(status, 202);
    assert!(api.app.env.stored_exactly(7, Duration::from_secs(20)).await);

    let mut seen = Vec::new();
    let mut path = "/api/v1/posts?limit=3".to_string();
    loop {
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 200, "{body}");
        for item in body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/posts?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("l-{i}")).collect();
    assert_eq!(seen, expected, "newest first, every post once");

    let (_, body) = api.get("/api/v1/posts?platform=reddit").await;
    let ids: Vec<&str> = strings(&body["items"], "id");
    assert_eq!(ids, vec!["l-1", "l-3", "l-5"]);

    let from = (chrono::Utc::now() - chrono::Duration::seconds(150)).to_rfc3339();
    let (_, body) = api
        .get(&format!("/api/v1/posts?from={}", urlencode(&from)))
        .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 3, "{body}");

    for (path, code) in [
        ("/api/v1/posts?limit=0", "invalid_query"),
        ("/api/v1/posts?limit=abc", "invalid_query"),
        ("/api/v1/posts?platform=myspace", "invalid_query"),
        ("/api/v1/posts?sentiment=angry", "invalid_query"),
        ("/api/v1/posts?bogus=1", "invalid_query"),
        ("/api/v1/posts?cursor=zz", "invalid_cursor"),
        ("/api/v1/posts?from=yesterday", "invalid_query"),
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_error_shape(&body, code);
    }
    let (status, body) = api.get("/api/v1/posts/does-not-exist").await;
    assert_eq!(status, 404);
    assert_error_shape(&body, "not_found");
    let (status, body) = api.get("/no/such/route").await;
    assert_eq!(status, 404);
    assert_error_shape(&body, "route_not_found");
    api.app.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Redis that refused writes part way (at `maxmemory` with `noeviction`) once appended 10
/// of a 40-post batch and answered 503, and the client, retrying as told, counted engagements
/// without an id twice. A batch is appended whole or not at all.
#[actix_rt::test]
async fn a_batch_is_appended_whole_or_not_at_all_when_redis_refuses_writes() {
    use fred::interfaces::{ClientLike, StreamsInterface};
    use fred::types::{ClusterHash, CustomCommand};
    let redis_server = PrivateRedis::start();
    let env = TestEnv::on(admin_url(), redis_server.url()).await;
    let settings = env.settings();
    let app = spawn_app_with(env, settings).await;
    let api = Api { app };
    let redis = api.app.redis().await;
    let config = |pairs: Vec<String>| {
        let redis = redis.clone();
        async move {
            let mut args = vec!["SET".to_string()];
            args.extend(pairs);
            let command = CustomCommand::new_static("CONFIG", ClusterHash::FirstKey, false);
            let _: fred::types::Value = redis.custom(command, args).await.unwrap();
        }
    };
    let added = || {
        let (redis, stream) = (redis.clone(), api.app.env.stream.clone());
        async move {
            let info: std::collections::HashMap<String, fred::types::Value> =
                redis.xinfo_stream(&stream, false, None).await.unwrap();
            info["entries-added"].as_u64().unwrap()
        }
    };
    // Ten likes without ids, then forty posts of 2 kB: a batch Redis can hold in part only.
    let batch = || {
        let at = chrono::Utc::now().to_rfc3339();
        let mut events: Vec<Value> = (0..10)
            .map(|_| json!({"type": "engagement", "post_id": "oom-0", "kind": "like", "at": at}))
            .collect();
        events
            .extend((0..40).map(|n| post(&format!("oom-{n}"), "reddit", &"word ".repeat(400), 1)));
        Value::Array(events).to_string()
    };
    // The stream exists and holds a first post; then Redis may hold little more.
    let (status, body) = api
        .post_events(post("first", "reddit", "hi", 1).to_string())
        .await;
    assert_eq!(status, 202, "{body}");
    let memory: String = redis
        .info(Some(fred::types::InfoKind::Memory))
        .await
        .unwrap();
    let used: u64 = memory
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    config(vec![
        "maxmemory-policy".into(),
        "noeviction".into(),
        "maxmemory".into(),
        (used + 40_000).to_string(),
    ])
    .await;
    let (mut refused, mut accepted) = (0, 0);
    for _ in 0..5 {
        let before = added().await;
        let (status, body) = api.post_events(batch()).await;
        let appended = added().await - before;
        match status {
            202 => {
                assert_eq!(appended, 50, "{body}");
                accepted += 1;
            }
            503 => {
                assert_eq!(appended, 0, "a refused batch appended {appended} events");
                assert_error_shape(&body, "unavailable");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(refused > 0, "Redis never refused a batch");

    // With room again, the retried batch is appended once: the likes count once.
    config(vec!["maxmemory".into(), "0".into()]).await;
    let (status, body) = api.post_events(batch()).await;
    let expected = 10 * (accepted + 1);
    assert_eq!(status, 202, "{body}");
    // Once every entry is read and acknowledged, the likes stored are all there will be.
    assert!(super::deletions::settled(&api.app.env, &redis).await);
    let likes: i64 = api
        .app
        .env
        .pg()
        .await
        .scalar(
            "SELECT COALESCE(sum(count), 0)::int8 FROM engagements \
             WHERE post_id = 'oom-0' AND kind = 'like'",
            &[],
        )
        .await;
    assert_eq!(likes, expected, "each accepted like counted once");
    api.app.shutdown().await;
}

/// Two requests whose transactions deadlock: PostgreSQL rolls one back, and its caller gets a
/// 503 to ask again (nothing was written), not a 500.
#[actix_rt::test]
async fn a_transaction_rolled_back_by_a_deadlock_is_a_503_to_ask_again() {
    let env = TestEnv::new().await;
    let (a, b) = (env.pg().await, env.pg().await);
    a.batch_execute("CREATE TABLE locked (id int PRIMARY KEY); INSERT INTO locked VALUES (1), (2)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; UPDATE locked SET id = id WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE locked SET id = id WHERE id = 2")
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        a.execute("UPDATE locked SET id = id WHERE id = 2", &[]),
        b.execute("UPDATE locked SET id = id WHERE id = 1", &[])
    );
    let victim = first
        .err()
        .or(second.err())
        .expect("PostgreSQL rolls one of the two back");
    assert_eq!(
        victim.code(),
        Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED)
    );
    let error = pulse::http::error::ApiError::from(victim);
    let response = actix_web::ResponseError::error_response(&error);
    assert_eq!(response.status(), 503);
}
