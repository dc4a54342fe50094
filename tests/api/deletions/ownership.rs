//! Ownership on the real pipeline: a producer cannot delete, squat on or inflate another
//! producer's posts, is named by Pulse or the stream and never by the event, and keeps its
//! posts through a key's rotation; a key scoped to id prefixes claims no other feed's posts.

use super::*;

/// What the first producer's data looks like to everyone: its posts, every rollup, the shares
/// the virality tracker counted for each of its posts, and the trending posts.
type Observed = (Vec<Value>, Keyed, Vec<(String, i64)>, Vec<String>);

async fn observed(server: &common::secured::SecuredServer) -> Observed {
    let pg = server.env.pg().await;
    let posts = pg
        .query(
            "SELECT id, text, deleted_at IS NULL FROM posts ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            json!([
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, bool>(2)
            ])
        })
        .collect();
    let mut shares = Vec::new();
    for i in 0..10 {
        let id = format!("v-{i}");
        let path = format!("/api/v1/posts/{id}/virality");
        let res = server.analyst("GET", &path, None).await;
        let n = match res.status {
            200 => res.json()["current"]["counts"]["shares"]
                .as_i64()
                .unwrap_or(0),
            status => -i64::from(status),
        };
        shares.push((id, n));
    }
    let trending = server
        .analyst("GET", "/api/v1/trending/posts?limit=50", None)
        .await;
    let mut trending = trending_ids(&trending.json());
    trending.sort();
    (posts, rollups(&pg).await, shares, trending)
}

/// Ends one run of a replay once the tracker has read every share the victim sent (the last
/// one on `shared`): what the victim's data looks like then, and the metrics.
async fn finish_run(server: common::secured::SecuredServer, shared: &str) -> (Observed, String) {
    let path = format!("/api/v1/posts/{shared}/virality");
    assert!(
        wait_until(WAIT, || async {
            let res = server.analyst("GET", &path, None).await;
            res.status == 200 && res.json()["current"]["counts"]["shares"] == 1
        })
        .await
    );
    let seen = observed(&server).await;
    let metrics = server.call("GET", "/metrics", None, None).await.body;
    server.app.shutdown().await;
    (seen, metrics)
}

/// The victim's data is the same with the attacker as alone; the attacked run's metrics.
fn assert_unchanged_by_attack(runs: &[(Observed, String)]) -> &str {
    let (alone, _) = &runs[0];
    let (attacked, metrics) = &runs[1];
    assert_eq!(
        alone, attacked,
        "the attacker changed what the victim's data looks like"
    );
    metrics
}

/// Where the squatting replays start: ten minutes ago, on the minute.
fn replay_start() -> DateTime<Utc> {
    (Utc::now() - TimeDelta::minutes(10))
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap()
}

/// The victim of the squatting replays: posts `v-0`..`v-{posts}` a second apart from `base`,
/// alternately liking and hating the phone, and one share of each of the first `shares`.
fn victim_events(base: DateTime<Utc>, posts: i64, shares: i64) -> Vec<Value> {
    (0..posts)
        .map(|i| {
            let text = if i % 2 == 0 {
                "I love this phone"
            } else {
                "this phone is awful"
            };
            post_at(&format!("v-{i}"), text, base + TimeDelta::seconds(i))
        })
        .chain((0..shares).map(|i| {
            let at = base + TimeDelta::seconds(30);
            engagement(&format!("e{i}"), &format!("v-{i}"), "share", 1, at)
        }))
        .collect()
}

#[actix_rt::test]
async fn a_second_producer_cannot_delete_squat_or_inflate_the_first_ones_posts() {
    let base = replay_start();
    let victim_posts = victim_events(base, 10, 5);
    let victim_deletes = vec![deletion("v-9", base + TimeDelta::seconds(40))];

    // The same victim alone, on a server of its own, and then beside an attacker.
    let mut runs = Vec::new();
    for attacked in [false, true] {
        let server = common::secured::SecuredServer::start(quick_scores).await;
        let pg = server.env.pg().await;
        let victim = server.key(Role::Ingest).key.clone();
        let attacker = keys::create(&pg, Role::Ingest, "attacker", None, "test")
            .await
            .unwrap()
            .key;
        let redis = server.env.redis().await;
        let send = |key: &str, events: &[Value]| {
            let body = Value::Array(events.to_vec()).to_string();
            let (addr, key) = (server.app.address(), key.to_string());
            async move {
                let res = raw_request(
                    addr,
                    "POST",
                    "/api/v1/events",
                    &[
                        ("x-api-key", key.as_str()),
                        ("content-type", "application/json"),
                    ],
                    Some(&body),
                )
                .await;
                assert_eq!(res.status, 202, "{}", res.body);
            }
        };
        if attacked {
            // Before the victim: pre-delete a post it will send, and engage with another.
            send(
                &attacker,
                &[
                    deletion("v-7", base),
                    engagement(
                        "x-held",
                        "v-3",
                        "share",
                        100_000,
                        base + TimeDelta::seconds(31),
                    ),
                ],
            )
            .await;
            assert!(read_all(&server.env, &redis).await);
        }
        send(&victim, &victim_posts).await;
        assert!(settled(&server.env, &redis).await);
        if attacked {
            let mut attack = vec![
                deletion("v-2", base + TimeDelta::seconds(35)),
                post_at(
                    "v-1",
                    "squatted: this phone is a scam",
                    base + TimeDelta::seconds(1),
                ),
                engagement("e0", "v-0", "like", 1_000, base + TimeDelta::seconds(32)),
            ];
            for i in 0..20 {
                attack.push(engagement(
                    &format!("forged-{i}"),
                    "v-0",
                    "share",
                    100_000,
                    base + TimeDelta::seconds(33),
                ));
            }
            send(&attacker, &attack).await;
            assert!(settled(&server.env, &redis).await);
        }
        send(&victim, &victim_deletes).await;
        assert!(settled(&server.env, &redis).await);
        assert!(deleted_posts_reach(&pg, 1).await);
        runs.push(finish_run(server, "v-4").await);
    }
    let metrics = assert_unchanged_by_attack(&runs);
    for (reason, n) in [
        ("id_taken", 1),
        ("not_owner_deletion", 2),
        ("not_owner_engagement", 22),
    ] {
        let line = format!("pulse_events_refused_total{{reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

#[actix_rt::test]
async fn a_producer_is_named_by_pulse_or_the_stream_never_by_the_event() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    let pg = env.pg().await;
    let now = Utc::now();
    // An event cannot carry a producer: the field is not part of any event.
    let mut claimed = post_at("claimed", "fine phone", now);
    claimed["producer"] = json!("stream");
    let (status, body) = http_post(&app, "/api/v1/events", &claimed.to_string()).await;
    assert_eq!(status, 400, "{body}");
    // Through the open intake, the producer is the intake's.
    let (status, body) = http_post(
        &app,
        "/api/v1/events",
        &post_at("by-http", "fine phone", now).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    // A stream entry may name its producer; a name that would break the trust pairs, or that
    // is not text, is dead-lettered with the reason.
    let entry = |producer: &[u8], id: &str| {
        let event = post_at(id, "fine phone", now).to_string();
        let redis = redis.clone();
        let stream = env.stream.clone();
        let producer = producer.to_vec();
        async move {
            let fields = vec![
                ("event", fred::types::Value::from(event)),
                ("producer", fred::types::Value::Bytes(producer.into())),
            ];
            xadd_fields(&redis, &stream, fields).await;
        }
    };
    entry(b"source:forum", "by-source").await;
    entry(b"key:a=*", "forged-trust").await;
    entry(&[0xff, 0xfe], "not-text").await;
    assert!(read_all(env, &redis).await);
    let producers: Vec<(String, String)> = pg
        .query("SELECT id, producer FROM posts ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        producers,
        [
            ("by-http".to_string(), "http".to_string()),
            ("by-source".to_string(), "source:forum".to_string()),
        ]
    );
    assert_metrics_hold(
        &app,
        &["pulse_dead_letters_total{reason=\"invalid_field\"} 2"],
    )
    .await;
    app.shutdown().await;
}

/// Engagements and deletions of the same posts in batches committed at the same moment: the
/// outside probe found 3 of 300 likes left in the rollups of deleted posts. Every post is
/// deleted in the end, so nothing may stay counted.
#[actix_rt::test]
async fn engagements_committed_beside_their_posts_deletion_never_stay_in_the_rollups() {
    let app = spawn_app_tuned(|s| {
        // Small batches, many in flight: a post's likes, its deletion and its shares land in
        // different batches committed side by side.
        s.ingest.read_batch = 4;
        s.ingest.max_batches_in_flight = 8;
    })
    .await;
    let (env, redis) = (&app.env, app.redis().await);
    let pg = env.pg().await;
    let now = Utc::now();
    let ids: Vec<String> = (0..240).map(|i| format!("raced-{i}")).collect();
    let posts: Vec<Value> = ids.iter().map(|id| post_at(id, "I love it", now)).collect();
    xadd_all(&redis, &env.stream, &posts).await;
    assert!(settled(env, &redis).await);
    let mut events = Vec::new();
    for group in ids.chunks(8) {
        for id in group {
            events.push(engagement(&format!("{id}-l1"), id, "like", 1, now));
        }
        for id in group {
            events.push(deletion(id, now));
        }
        for id in group {
            events.push(engagement(&format!("{id}-l2"), id, "like", 1, now));
            events.push(engagement(&format!("{id}-s"), id, "share", 1, now));
        }
    }
    xadd_all(&redis, &env.stream, &events).await;
    assert!(settled(env, &redis).await);
    assert!(deleted_posts_reach(&pg, 240).await);
    assert!(rollups(&pg).await.is_empty(), "{:?}", rollups(&pg).await);
    app.shutdown().await;
}

/// Posts an array of events with `key` (an ingest key's secret).
async fn post_as(s: &common::secured::SecuredServer, key: &str, events: &[Value]) -> RawResponse {
    s.post_events_as(key, &Value::Array(events.to_vec()).to_string())
        .await
}

/// Rotating an ingest key orphaned every post stored under the old one: their deletions and
/// engagements were answered 202 and silently refused. A key made by rotation speaks as the
/// producer of its line's first key.
#[actix_rt::test]
async fn a_rotated_key_keeps_the_posts_of_the_key_it_replaces() {
    let s = common::secured::SecuredServer::start(|_| {}).await;
    let old = s.key(Role::Ingest).clone();
    let now = Utc::now();
    let first = post_as(&s, &old.key, &[post_at("rotated", "I love it", now)]).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let stored = s
        .count_reaches("SELECT count(*) FROM posts WHERE id = 'rotated'", 1, WAIT)
        .await;
    assert!(stored);

    let rotate = format!("/api/v1/admin/keys/{}/rotate", old.info.id);
    let rotated = s.call("POST", &rotate, Some(Role::Admin), None).await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let new = rotated.json();
    assert_eq!(new["speaks_as"], old.info.id.as_str(), "{new}");
    assert_eq!(new["role"], "ingest");
    let new_key = new["key"].as_str().unwrap().to_string();
    let revoke = format!("/api/v1/admin/keys/{}", old.info.id);
    let revoked = s.call("DELETE", &revoke, Some(Role::Admin), None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let refused = post_as(&s, &old.key, &[post_at("late", "hi", now)]).await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    // The new key engages with and deletes the old key's post.
    let later = post_as(
        &s,
        &new_key,
        &[
            engagement("rotated-like", "rotated", "like", 3, now),
            deletion("rotated", now + TimeDelta::seconds(1)),
        ],
    )
    .await;
    assert_eq!(later.status, 202, "{}", later.body);
    let applied = wait_until(WAIT, || async {
        s.count("SELECT count(*) FROM posts WHERE id = 'rotated' AND deleted_at IS NOT NULL")
            .await
            == 1
            && s.count("SELECT count(*) FROM engagements WHERE post_id = 'rotated' AND NOT held")
                .await
                == 1
    })
    .await;
    assert!(applied, "the new key's deletion and like were refused");

    // A key rotated from a rotated key still speaks as the first.
    let again = s
        .call(
            "POST",
            &format!("/api/v1/admin/keys/{}/rotate", new["id"].as_str().unwrap()),
            Some(Role::Admin),
            None,
        )
        .await;
    assert_eq!(again.json()["speaks_as"], old.info.id.as_str());
    let missing = s
        .call(
            "POST",
            "/api/v1/admin/keys/000000000000/rotate",
            Some(Role::Admin),
            None,
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
}

/// The value of one exposed sample of `/metrics` (0 when absent).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The squatting replay with scoped keys: an attacker limited to its own id prefix sends the
/// victim's ids before and after the victim (a post planted under an id the victim will
/// send, a pre-deletion, forged shares, a replacement and a deletion of stored posts). Each
/// is refused before it is appended, so the victim's posts and every rollup read as if the
/// attacker had sent nothing, and nothing is left to count as `id_taken`.
#[actix_rt::test]
async fn a_key_scoped_to_its_id_prefixes_cannot_claim_another_feeds_posts() {
    let base = replay_start();
    let victim_posts = victim_events(base, 6, 3);

    let mut runs = Vec::new();
    for attacked in [false, true] {
        let server = common::secured::SecuredServer::start(quick_scores).await;
        let redis = server.env.redis().await;
        let create = |name: &'static str, scope: Value| {
            let server = &server;
            async move {
                let body = json!({"role": "ingest", "name": name, "scope": scope});
                let res = server
                    .call("POST", "/api/v1/admin/keys", Some(Role::Admin), Some(body))
                    .await;
                assert_eq!(res.status, 201, "{}", res.body);
                let made = res.json();
                assert_eq!(made["scope"]["id_prefixes"], scope["id_prefixes"], "{made}");
                made["key"].as_str().unwrap().to_string()
            }
        };
        let victim = create(
            "victim",
            json!({"id_prefixes": ["v-"], "platforms": ["twitter"]}),
        )
        .await;
        let attacker = create("attacker", json!({"id_prefixes": ["x-"]})).await;
        let refused = |events: Vec<Value>, outside: Vec<u64>| {
            let (server, attacker) = (&server, attacker.clone());
            async move {
                let body = Value::Array(events).to_string();
                let res = server.post_events_as(&attacker, &body).await;
                assert_eq!(res.status, 403, "{}", res.body);
                let answer = res.json();
                assert_eq!(answer["error"]["code"], "out_of_scope", "{answer}");
                let indexes: Vec<u64> = answer["error"]["details"]["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["index"].as_u64().unwrap())
                    .collect();
                assert_eq!(indexes, outside, "{answer}");
            }
        };
        if attacked {
            // Before the victim: plant a post it will send, pre-delete another, engage a third;
            // a batch mixing them with the attacker's own ids is refused whole.
            refused(vec![post_at("v-1", "squatted: a scam", base)], vec![0]).await;
            refused(vec![deletion("v-4", base)], vec![0]).await;
            let forged = engagement(
                "x-e",
                "v-2",
                "share",
                100_000,
                base + TimeDelta::seconds(31),
            );
            refused(vec![forged], vec![0]).await;
            let mixed = vec![
                post_at("x-own", "mine", base),
                post_at("v-3", "squatted too", base),
                deletion("x-gone", base),
            ];
            refused(mixed, vec![1]).await;
        }
        let sent = server
            .post_events_as(&victim, &Value::Array(victim_posts.clone()).to_string())
            .await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert!(settled(&server.env, &redis).await);
        if attacked {
            refused(vec![post_at("v-0", "replaced", base)], vec![0]).await;
            refused(
                vec![deletion("v-5", base + TimeDelta::seconds(40))],
                vec![0],
            )
            .await;
            let forged = (0..5)
                .map(|i| {
                    let at = base + TimeDelta::seconds(33);
                    engagement(&format!("x-f{i}"), "v-0", "share", 100_000, at)
                })
                .collect();
            refused(forged, vec![0, 1, 2, 3, 4]).await;
            // Within its scope the attacker is served: a deletion of an id of its own.
            let own = Value::Array(vec![deletion("x-gone", base)]).to_string();
            let own = server.post_events_as(&attacker, &own).await;
            assert_eq!(own.status, 202, "{}", own.body);
            assert!(settled(&server.env, &redis).await);
        }
        let delete = Value::Array(vec![deletion("v-1", base + TimeDelta::seconds(40))]);
        let sent = server.post_events_as(&victim, &delete.to_string()).await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert!(settled(&server.env, &redis).await);
        assert!(deleted_posts_reach(&server.env.pg().await, 1).await);
        runs.push(finish_run(server, "v-2").await);
    }
    let metrics = assert_unchanged_by_attack(&runs);
    let refused = r#"pulse_http_events_refused_total{reason="out_of_scope"}"#;
    assert_eq!(sample(metrics, refused), 11.0, "{metrics}");
    for reason in ["id_taken", "not_owner_deletion", "not_owner_engagement"] {
        let series = format!("pulse_events_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(metrics, &series), 0.0, "{series} in:\n{metrics}");
    }
}

/// A key's scope is shown where keys are listed, applies at once in the process that set it,
/// is kept by rotation, and can be lifted; scopes out of bounds are refused.
#[actix_rt::test]
async fn key_scopes_are_listed_changed_and_kept_by_rotation() {
    let s = common::secured::SecuredServer::start(|_| {}).await;
    let key = s.key(Role::Ingest).clone();
    let now = Utc::now();
    let path = format!("/api/v1/admin/keys/{}/scope", key.info.id);
    for bad in [
        json!({"id_prefixes": [""]}),
        json!({"products": ["a\u{202E}b"]}),
        json!({"platforms": ["myspace"]}),
        json!({"owners": ["x"]}),
    ] {
        let res = s
            .call("PUT", &path, Some(Role::Admin), Some(bad.clone()))
            .await;
        assert_eq!(res.status, 400, "{bad}: {}", res.body);
    }
    // 65 prefixes are refused for their number, and past the 65th, elements are not even read
    // as prefixes: however long the list, the server builds no more than 65 of them.
    let prefixes: Vec<Value> = (0..65).map(|i| json!(format!("p{i}:"))).collect();
    for listed in [json!(prefixes), past_its_bound(prefixes.clone(), 10_000)] {
        let scope = json!({"id_prefixes": listed});
        let set = s
            .call("PUT", &path, Some(Role::Admin), Some(scope.clone()))
            .await;
        assert_refused(
            set.status,
            &set.json(),
            "invalid_key",
            "more than 64 values",
        );
        let body = json!({"role": "ingest", "name": "wide", "scope": scope});
        let made = s
            .call("POST", "/api/v1/admin/keys", Some(Role::Admin), Some(body))
            .await;
        assert_refused(
            made.status,
            &made.json(),
            "invalid_key",
            "more than 64 values",
        );
    }
    let missing = s
        .call(
            "PUT",
            "/api/v1/admin/keys/000000000000/scope",
            Some(Role::Admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let analyst = s.analyst("PUT", &path, Some(json!({}))).await;
    assert_eq!(analyst.status, 403, "{}", analyst.body);

    let scope = json!({"platforms": ["reddit"], "products": ["phone"], "id_prefixes": ["rd:"]});
    let set = s
        .call("PUT", &path, Some(Role::Admin), Some(scope.clone()))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.json()["scope"], scope);
    let post = |id: &str, platform: &str| {
        let mut p = post_at(id, "hello", now);
        p["platform"] = json!(platform);
        p["product"] = json!("phone");
        Value::Array(vec![p]).to_string()
    };
    let out = s.post_events_as(&key.key, &post("tw:1", "reddit")).await;
    assert_eq!(out.status, 403, "{}", out.body);
    let out = s.post_events_as(&key.key, &post("rd:1", "twitter")).await;
    assert_eq!(out.status, 403, "{}", out.body);
    let ok = s.post_events_as(&key.key, &post("rd:1", "reddit")).await;
    assert_eq!(ok.status, 202, "{}", ok.body);
    // The pipeline's producers (and the dashboard's panel) show what each key may send.
    let pipeline = s.analyst("GET", "/api/v1/pipeline", None).await.json();
    let lane = item_where(&pipeline["producers"], |p| {
        p["producer"] == format!("key:{}", key.info.id)
    });
    assert_eq!(lane["scope"], scope, "{pipeline}");

    let listed = s
        .call("GET", "/api/v1/admin/keys", Some(Role::Admin), None)
        .await
        .json();
    let entry = item_where(&listed["items"], |k| k["id"] == key.info.id.as_str());
    assert_eq!(entry["scope"], scope);
    let rotate = format!("/api/v1/admin/keys/{}/rotate", key.info.id);
    let rotated = s.call("POST", &rotate, Some(Role::Admin), None).await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    assert_eq!(rotated.json()["scope"], scope, "rotation keeps the scope");
    let new_key = rotated.json()["key"].as_str().unwrap().to_string();
    let out = s.post_events_as(&new_key, &post("tw:2", "reddit")).await;
    assert_eq!(out.status, 403, "{}", out.body);

    let lifted = s
        .call("PUT", &path, Some(Role::Admin), Some(json!({})))
        .await;
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    assert!(lifted.json()["scope"].is_null());
    let ok = s.post_events_as(&key.key, &post("tw:1", "twitter")).await;
    assert_eq!(ok.status, 202, "{}", ok.body);
    let audited = s
        .count(
            "SELECT count(*) FROM audit_log WHERE action = 'key.update' AND outcome = 'succeeded'",
        )
        .await;
    assert!(audited >= 2, "{audited}");
}
