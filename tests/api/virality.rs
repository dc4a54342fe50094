//! The virality engine against a real Pulse: cascades built from streamed engagements are
//! classified deep or broad, ranked on the trending endpoint, survive a restart, reach
//! WebSocket subscribers; scoring and feedback validate their input.

use crate::common;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use futures::{SinkExt, StreamExt};
use pulse::virality::thresholds::Learned;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// `count` finished cascades of `platform` (`{prefix}1`...), each of `shares` (SQL over `g`,
/// the cascade's number), as SQL that stores them: the stream's, the producer of entries
/// written straight to it.
pub(crate) fn finished_cascades(prefix: &str, platform: &str, shares: &str, count: u32) -> String {
    finished_cascades_of(prefix, platform, "stream", shares, count)
}

/// [`finished_cascades`] of posts `producer` stored.
pub(crate) fn finished_cascades_of(
    prefix: &str,
    platform: &str,
    producer: &str,
    shares: &str,
    count: u32,
) -> String {
    format!(
        "INSERT INTO virality_cascades (post_id, platform, producer, post_known, created_at, \
             observed_at, status, shares, model_name, model_version, params_hash) \
         SELECT '{prefix}' || g, '{platform}', '{producer}', true, now(), now(), 'finished', \
             {shares}, 'm', '1', 'h' \
         FROM generate_series(1, {count}) g;"
    )
}

/// Analyst feedback of `shares` on the first `count` cascades `{prefix}1`..., as SQL that
/// stores it.
pub(crate) fn final_shares(prefix: &str, shares: i64, count: u32) -> String {
    format!(
        "INSERT INTO virality_feedback (post_id, final_shares) \
         SELECT '{prefix}' || g, {shares} FROM generate_series(1, {count}) g;"
    )
}

/// The viral thresholds learned (the 0.99 quantile of each producer's cascades, for those
/// with 500 finished on a platform) once `rows` (SQL) are stored, on a database of their own:
/// what is learned is read from the store alone, with no server running beside it.
pub(crate) async fn learned_after(rows: &[String]) -> Learned {
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    pg.batch_execute(&rows.join(" ")).await.unwrap();
    pulse::db::virality::learned_thresholds(&pg, 0.99, 500)
        .await
        .unwrap()
}

/// Each platform's threshold as [`learned_after`] learns it.
pub(crate) async fn thresholds_learned_after(
    rows: &[String],
) -> std::collections::BTreeMap<String, f64> {
    learned_after(rows).await.platforms().clone()
}

/// A Pulse that scores cascades on request only: scores every 100 ms, the tracker off.
async fn scoring_app() -> TestApp {
    spawn_app_tuned(|s| {
        quick_scores(s);
        s.virality.enabled = false;
    })
    .await
}

fn post(id: &str, platform: &str, followers: u64, created: chrono::DateTime<Utc>) -> String {
    PostEvent::new(id, "Look at the new #PulsePhone camera")
        .platform(platform)
        .followers(followers)
        .at(created)
        .without(&["geo"])
        .to_string()
}

fn share(post_id: &str, n: usize, at: chrono::DateTime<Utc>, via: Option<String>) -> String {
    let mut e = json!({
        "type": "engagement", "id": format!("{post_id}:s{n}"), "post_id": post_id,
        "kind": "share", "at": at.to_rfc3339(), "actor_followers": 150
    });
    if let Some(via) = via {
        e["via"] = json!(via);
    }
    e.to_string()
}

/// A post and `n` shares one second apart: each through the previous one (`chain`) or all
/// straight from the post.
fn cascade(id: &str, n: usize, chain: bool, created: chrono::DateTime<Utc>) -> Vec<String> {
    let mut events = vec![post(id, "twitter", 1_000, created)];
    for i in 0..n {
        let via = (chain && i > 0).then(|| format!("{id}:s{}", i - 1));
        events.push(share(
            id,
            i,
            created + TimeDelta::seconds(i as i64 + 1),
            via,
        ));
    }
    events
}

/// A post and shares straight from it, the `n`th made `after_secs[n]` seconds after the post.
fn shared_at(
    id: &str,
    created: chrono::DateTime<Utc>,
    after_secs: impl IntoIterator<Item = i64>,
) -> Vec<String> {
    let mut events = vec![post(id, "twitter", 1_000, created)];
    events.extend(
        after_secs
            .into_iter()
            .enumerate()
            .map(|(n, secs)| share(id, n, created + TimeDelta::seconds(secs), None)),
    );
    events
}

/// Waits until the post's tracked virality has `shares` shares; returns its current object.
async fn virality_with(app: &TestApp, id: &str, shares: u64) -> Value {
    app.wait_for(
        &format!("/api/v1/posts/{id}/virality"),
        Duration::from_secs(30),
        |body| body["current"]["counts"]["shares"] == json!(shares),
    )
    .await
}

#[actix_rt::test]
async fn a_deep_cascade_and_a_broad_one_are_classified_as_such() {
    let app = spawn_app_tuned(quick_scores).await;
    let created = Utc::now() - TimeDelta::minutes(5);
    let mut events = cascade("deep", 40, true, created);
    events.extend(cascade("broad", 40, false, created));
    app.send_events(&events).await;

    let deep = virality_with(&app, "deep", 40).await;
    let broad = virality_with(&app, "broad", 40).await;
    assert_eq!(deep["current"]["virality_dynamics"], "deep", "{deep}");
    assert_eq!(deep["current"]["structure"]["depth"], 40);
    assert_eq!(broad["current"]["virality_dynamics"], "broad", "{broad}");
    assert_eq!(broad["current"]["structure"]["depth"], 1);
    assert_eq!(broad["current"]["structure"]["breadth"], 40);
    // A chain of n nodes has structural virality (n + 1) / 3; a star of k shares 2k/(k+1).
    let sv = deep["current"]["structure"]["structural_virality"]
        .as_f64()
        .unwrap();
    assert!((sv - 42.0 / 3.0).abs() < 1e-3, "{sv}");
    let sv = broad["current"]["structure"]["structural_virality"]
        .as_f64()
        .unwrap();
    assert!((sv - 80.0 / 41.0).abs() < 1e-3, "{sv}");
    for v in [&deep, &broad] {
        let c = &v["current"];
        assert_eq!(c["model_lineage"]["name"], "pulse-growth");
        assert_eq!(c["platform"], "twitter");
        assert_eq!(c["counts"]["shares"], 40);
        assert_eq!(c["reach"], 40 * 150);
        let (lo, hi) = (
            c["confidence_interval"]["lower"].as_f64().unwrap(),
            c["confidence_interval"]["upper"].as_f64().unwrap(),
        );
        let p = c["predicted_final_shares"].as_f64().unwrap();
        assert!(lo >= 40.0 && lo <= p && p <= hi, "{c}");
        assert!(!v["history"].as_array().unwrap().is_empty());
    }
    app.shutdown().await;
}

#[actix_rt::test]
async fn trending_ranks_a_fast_growing_post_above_a_slow_one() {
    let app = spawn_app_tuned(quick_scores).await;
    let created = Utc::now() - TimeDelta::minutes(2);
    let mut events = shared_at("slow", created, [50, 100]);
    events.extend(cascade("fast", 60, false, created));
    app.send_events(&events).await;
    virality_with(&app, "slow", 2).await;
    virality_with(&app, "fast", 60).await;

    let (status, body) = app
        .get("/api/v1/trending/posts?platform=twitter&limit=10")
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = strings(&body["items"], "post_id");
    assert_eq!(ids, ["fast", "slow"], "{body}");
    let items = body["items"].as_array().unwrap();
    assert!(
        items[0]["virality_score"].as_f64() > items[1]["virality_score"].as_f64(),
        "{body}"
    );
    assert!(items[0]["momentum"]["velocity"].as_f64() > items[1]["momentum"]["velocity"].as_f64());
    // Filters.
    let (_, none) = app.get("/api/v1/trending/posts?platform=reddit").await;
    assert_eq!(none["items"], json!([]));
    let (_, tagged) = app
        .get("/api/v1/trending/posts?hashtag=pulsephone&dynamics=broad")
        .await;
    assert_eq!(tagged["items"].as_array().unwrap().len(), 2);
    let (status, err) = app.get("/api/v1/trending/posts?dynamics=sideways").await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "invalid_query");
    // Momentum by product.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            let (_, m) = app.get("/api/v1/trending/momentum?dimension=product").await;
            m["items"][0]["key"] == "pulse-phone"
        })
        .await
    );
    app.shutdown().await;
}

/// Scores as [`quick_scores`] does, and tracks a tree of ten shares at most, which the
/// rebuild tests fill.
fn ten_tracked_shares(s: &mut pulse::config::Settings) {
    quick_scores(s);
    s.virality.max_tracked_shares = 10;
}

/// Serves `env` again, tuned by `tune`, and waits until the post `before` describes has
/// `shares` shares there; asserts that each of `fields` of its current object is the one
/// `before` had. The app, and the post's virality in it.
async fn restarted_as_before(
    env: TestEnv,
    tune: fn(&mut pulse::config::Settings),
    before: &Value,
    shares: u64,
    fields: &[&str],
) -> (TestApp, Value) {
    let app = env.serve(tune).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = before["post_id"].as_str().expect("the post's id");
    let after = virality_with(&app, id, shares).await;
    for field in fields {
        assert_eq!(before["current"][field], after["current"][field], "{field}");
    }
    (app, after)
}

#[actix_rt::test]
async fn predictions_survive_a_restart() {
    let app = spawn_app_tuned(quick_scores).await;
    let created = Utc::now() - TimeDelta::minutes(3);
    let mut events = cascade("kept", 25, true, created);
    // Some broadcast shares on top of the chain.
    for i in 25..35 {
        events.push(share("kept", i, created + TimeDelta::seconds(40), None));
    }
    app.send_events(&events).await;
    let before = virality_with(&app, "kept", 35).await;
    let env = app.shutdown().await;

    // Rebuilt from PostgreSQL: the same prediction, and no new history row for it.
    let fields = [
        "virality_score",
        "virality_probability",
        "predicted_final_shares",
        "confidence_interval",
        "virality_dynamics",
        "structure",
        "model_lineage",
        "observed_at",
    ];
    let (app, after) = restarted_as_before(env, quick_scores, &before, 35, &fields).await;
    assert_eq!(before["history"], after["history"]);
    // The live tree was rebuilt too: a share through the chain's tip deepens it.
    let more = vec![share(
        "kept",
        99,
        created + TimeDelta::seconds(60),
        Some("kept:s24".into()),
    )];
    app.send_events(&more).await;
    let grown = virality_with(&app, "kept", 36).await;
    assert_eq!(grown["current"]["structure"]["depth"], 26);
    app.shutdown().await;
}

/// A cascade past its tracked tree, with thousands of likes, is rebuilt from a number of rows
/// bounded by the tree and the momentum's minutes, and keeps every count. Failed while every
/// engagement row of every active cascade was read at a takeover: a post of millions of likes
/// held them all in memory at once.
#[actix_rt::test]
async fn a_rebuild_reads_a_bounded_number_of_rows_and_keeps_every_count() {
    let app = spawn_app_tuned(ten_tracked_shares).await;
    let created = Utc::now() - TimeDelta::minutes(3);
    app.send_events(&cascade("heavy", 30, true, created)).await;
    let before = virality_with(&app, "heavy", 30).await;
    let env = app.shutdown().await;

    // Likes from before the feed began (rows without a transaction id count for rebuilds
    // only): 6,000 rows of 1 to 3 likes each, 12,000 likes over two minutes.
    let pg = env.pg().await;
    pg.batch_execute(
        "INSERT INTO engagements (key, post_id, kind, at, count, stream_id, tx) \
         SELECT 'like-' || g, 'heavy', 'like', \
                now() - interval '170 seconds' + g * interval '20 milliseconds', \
                1 + g % 3, '0-' || g, NULL \
         FROM generate_series(1, 6000) g",
    )
    .await
    .unwrap();
    let bounds = pulse::db::virality::RebuildBounds {
        max_shares: 10,
        recent_minutes: 4,
    };
    let rows =
        pulse::db::virality::engagements_before(&pg, &["heavy".to_string()], u64::MAX, bounds)
            .await
            .unwrap();
    let count_of = |kind: pulse::models::EngagementKind| -> u64 {
        rows.iter()
            .filter(|r| r.kind == kind)
            .map(|r| u64::from(r.count))
            .sum()
    };
    assert_eq!(count_of(pulse::models::EngagementKind::Like), 12_000);
    assert_eq!(count_of(pulse::models::EngagementKind::Share), 30);
    assert!(rows.len() <= 40, "{} rows read for 6,030", rows.len());
    let tracked = rows.iter().filter(|r| !r.share_id.is_empty()).count();
    assert_eq!(
        tracked, 10,
        "the shares of the tracked tree are read one by one"
    );

    let app = env.serve(ten_tracked_shares).await;
    let after = app
        .wait_for(
            "/api/v1/posts/heavy/virality",
            Duration::from_secs(30),
            |body| body["current"]["counts"]["likes"] == json!(12_000),
        )
        .await;
    assert_eq!(after["current"]["counts"]["shares"], 30, "{after}");
    assert_eq!(
        before["current"]["structure"], after["current"]["structure"],
        "the tracked tree is the one before the restart"
    );
    app.shutdown().await;
}

/// Shares committed after the tree was full but dated before its shares: live, the tree kept
/// the first it read; a rebuild took the first by date, a chain instead of the broadcast, and
/// predicted another structure and another final count after every restart.
#[actix_rt::test]
async fn a_rebuild_tracks_the_shares_the_live_tree_tracked() {
    let app = spawn_app_tuned(ten_tracked_shares).await;
    let created = Utc::now() - TimeDelta::minutes(5);
    let broadcast = shared_at("late", created, 100..110);
    app.send_events(&broadcast).await;
    virality_with(&app, "late", 10).await;
    let chain: Vec<String> = (10..15)
        .map(|i| {
            let via = (i > 10).then(|| format!("late:s{}", i - 1));
            share("late", i, created + TimeDelta::seconds(40 + i as i64), via)
        })
        .collect();
    app.send_events(&chain).await;
    let before = virality_with(&app, "late", 15).await;
    assert_eq!(before["current"]["structure"]["depth"], 1, "{before}");
    let env = app.shutdown().await;

    let fields = ["structure", "predicted_final_shares", "confidence_interval"];
    let (app, _) = restarted_as_before(env, ten_tracked_shares, &before, 15, &fields).await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_cascade_engaged_again_after_it_finished_goes_on_with_its_whole_tree() {
    let app = spawn_app_tuned(|s| {
        quick_scores(s);
        s.virality.inactive_expiry_secs = 1;
    })
    .await;
    let created = Utc::now() - TimeDelta::minutes(3);
    let events = cascade("quiet", 10, true, created);
    app.send_events(&events).await;
    virality_with(&app, "quiet", 10).await;
    let path = "/api/v1/posts/quiet/virality";
    assert!(
        wait_until(Duration::from_secs(15), || async {
            app.get(path).await.1["current"]["status"] == "finished"
        })
        .await,
        "the quiet cascade never finished"
    );

    // A burst after the quiet spell, through the chain's tip and from the post.
    let later = created + TimeDelta::seconds(100);
    let more = vec![
        share("quiet", 10, later, Some("quiet:s9".into())),
        share("quiet", 11, later, None),
    ];
    app.send_events(&more).await;
    let revived = virality_with(&app, "quiet", 12).await;
    let current = &revived["current"];
    assert_eq!(current["status"], "active", "{revived}");
    assert_eq!(current["structure"]["depth"], 11, "{revived}");
    assert_eq!(current["structure"]["breadth"], 2, "{revived}");
    let metrics = metrics_text(&app).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "pulse_virality_cascades_revived_total 1"),
        "{metrics}"
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn score_and_feedback_validate_in_the_error_shape() {
    let app = scoring_app().await;
    let env = &app.env;
    let created = Utc::now() - TimeDelta::minutes(10);

    let mut engagements = Vec::new();
    for i in 0..30 {
        engagements.push(json!({"id": format!("s{i}"), "kind": "share",
            "at": (created + TimeDelta::seconds(i)).to_rfc3339(), "actor_followers": 200,
            "via": if i > 0 { Some(format!("s{}", i - 1)) } else { None }}));
    }
    engagements.push(json!({"kind": "like", "at": created.to_rfc3339(), "count": 12}));
    let body = json!({"post": {"id": "p1", "platform": "reddit",
        "created_at": created.to_rfc3339(), "author_followers": 5000},
        "engagements": engagements});
    let (status, scored) = http_post(&app, "/api/v1/score", &body.to_string()).await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!(scored["counts"]["shares"], 30);
    assert_eq!(scored["counts"]["likes"], 12);
    assert_eq!(scored["virality_dynamics"], "deep");
    assert!(scored["virality_score"].as_f64().unwrap() <= 100.0);
    assert!(scored["predicted_final_shares"].as_f64().unwrap() >= 30.0);
    assert!(
        scored["model_lineage"]["params_hash"]
            .as_str()
            .unwrap()
            .len()
            == 16
    );

    let bad = json!({"post": {"platform": "myspace", "created_at": created.to_rfc3339()},
        "engagements": [{"kind": "share", "at": (created - TimeDelta::seconds(5)).to_rfc3339(),
                         "count": 0}]});
    let (status, err) = http_post(&app, "/api/v1/score", &bad.to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "invalid_request");
    assert_eq!(
        error_fields(&err),
        ["post.platform", "engagements[0].at", "engagements[0].count"]
    );
    let (status, err) = http_post(&app, "/api/v1/score", r#"{"post": {}, "surprise": 1}"#).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "invalid_json");
    assert!(err["error"]["message"].is_string());
    // Times at the ends of what a timestamp can hold: refused, not counted forward from.
    for at in ["+262142-12-31T23:59:59Z", "-262143-01-01T00:00:00Z"] {
        let edge = json!({"post": {"created_at": at},
            "engagements": [{"kind": "share", "at": at}], "observed_at": at});
        let (status, err) = http_post(&app, "/api/v1/score", &edge.to_string()).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["code"], "invalid_json", "{err}");
    }

    let (status, err) = http_post(&app, "/api/v1/feedback", r#"{"post_id": "p1"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "invalid_request");
    let (status, err) = http_post(
        &app,
        "/api/v1/feedback",
        r#"{"post_id": "p1", "final_shares": -3, "sentiment_label": "angry"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        err["error"]["details"]["errors"].as_array().unwrap().len(),
        2
    );
    let labelled = r#"{"post_id": "p1", "final_shares": 120, "sentiment_label": "positive"}"#;
    let (status, err) = http_post(&app, "/api/v1/feedback", labelled).await;
    assert_eq!(status, 404, "p1 was scored, never stored: {err}");
    assert_eq!(err["error"]["code"], "not_found");
    let p1 = super::deletions::post_at("p1", "Worth sharing", created);
    super::deletions::xadd_all(&env.redis().await, &env.stream, &[p1]).await;
    assert!(app.wait_for_posts(1, Duration::from_secs(60)).await);
    let (status, ok) = http_post(&app, "/api/v1/feedback", labelled).await;
    assert_eq!(status, 201, "{ok}");
    assert_eq!(ok["final_shares"], 120);
    let stored: i64 = env
        .pg()
        .await
        .scalar(
            "SELECT count(*) FROM virality_feedback WHERE post_id = 'p1'",
            &[],
        )
        .await;
    assert_eq!(stored, 1);
    let (status, err) = app.get("/api/v1/posts/nothing-here/virality").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "not_found");
    app.shutdown().await;
}

/// The next text message of type `kind` on `ws`, the others passed over; `None` once the
/// socket closes.
async fn next_of_type(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    kind: &str,
) -> Option<Value> {
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(text) = frame {
            let msg: Value = serde_json::from_str(&text).unwrap();
            if msg["type"] == kind {
                return Some(msg);
            }
        }
    }
    None
}

#[actix_rt::test]
async fn a_virality_update_reaches_a_websocket_subscriber() {
    let app = spawn_app_tuned(quick_scores).await;
    let stream = tokio::net::TcpStream::connect(app.address()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", app.address()), stream)
        .await
        .unwrap();
    ws.send(Message::text(
        r#"{"type":"subscribe","topics":["virality"],"filter":{"product":"pulse-phone"}}"#,
    ))
    .await
    .unwrap();
    // Only once the subscription is registered may the cascade's one update be published.
    let subscribed =
        tokio::time::timeout(Duration::from_secs(10), next_of_type(&mut ws, "subscribed"))
            .await
            .map(|ack| ack.is_some());
    assert_eq!(subscribed, Ok(true));
    let created = Utc::now() - TimeDelta::minutes(1);
    app.send_events(&cascade("live", 50, false, created)).await;
    let update = tokio::time::timeout(
        Duration::from_secs(30),
        next_of_type(&mut ws, "virality:update"),
    )
    .await
    .expect("a virality:update")
    .expect("socket closed");
    let data = &update["data"];
    assert_eq!(data["post_id"], "live");
    assert_eq!(data["product"], "pulse-phone");
    assert!(data["virality_score"].as_f64().unwrap() >= 5.0);
    assert!(data["confidence_interval"]["upper"].is_number());
    app.shutdown().await;
}

/// A young cascade on real platforms has most of its shares ahead of it: ten minutes in, the
/// service predicts well above the count, and says exactly what `pulse eval virality` says for
/// the same shares at the same age (the evaluation and the API are one model).
#[actix_rt::test]
async fn scoring_a_chain_whose_every_link_is_waited_on_links_each_share_under_its_via() {
    let app = scoring_app().await;
    let created = Utc::now() - TimeDelta::minutes(10);
    let at = (created + TimeDelta::seconds(1)).to_rfc3339();
    // Shares o<i> through s<i> first, then the chain s0 <- s1 <- ...: each link arriving
    // re-links the share waiting on it.
    const N: usize = 2_000;
    let mut engagements = Vec::with_capacity(2 * N);
    for i in 0..N {
        engagements.push(json!({"id": format!("o{i}"), "kind": "share", "at": at,
            "via": format!("s{i}")}));
    }
    for i in 0..N {
        let via = (i > 0).then(|| format!("s{}", i - 1));
        engagements.push(json!({"id": format!("s{i}"), "kind": "share", "at": at, "via": via}));
    }
    let body = json!({"post": {"id": "chain", "created_at": created.to_rfc3339()},
        "engagements": engagements});
    let (status, scored) = http_post(&app, "/api/v1/score", &body.to_string()).await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!(scored["counts"]["shares"], 2 * N);
    // post -> s0 -> ... -> s(N-1) -> o(N-1)
    assert_eq!(
        scored["structure"]["depth"],
        N + 1,
        "{}",
        scored["structure"]
    );
    assert_eq!(scored["structure"]["breadth"], 2, "{}", scored["structure"]);
    app.shutdown().await;
}

#[actix_rt::test]
async fn scoring_a_young_cascade_predicts_growth_as_the_evaluation_does() {
    use pulse::virality::calibration::Calibration;
    use pulse::virality::cascade::{ShareNode, ROOT};
    use pulse_tools::eval::virality::{data::TrueCascade, report};

    let app = scoring_app().await;
    let created = chrono::DateTime::from_timestamp(1_420_070_400, 0).unwrap();
    // 40 shares over the first ten minutes, one in four resharing an earlier share.
    let delays: Vec<i64> = (0..40).map(|i| 5 + i * 14).collect();
    let mut engagements = Vec::new();
    let mut shares = Vec::new();
    for (i, d) in delays.iter().enumerate() {
        let via = (i % 4 == 3).then(|| i - 2);
        engagements.push(json!({"id": format!("s{i}"), "kind": "share",
            "at": (created + TimeDelta::seconds(*d)).to_rfc3339(),
            "via": via.map(|v| format!("s{v}"))}));
        shares.push(ShareNode {
            at: created.timestamp() as f64 + *d as f64,
            followers: None,
            parent: via.map_or(ROOT, |v| v as u32),
            weight: 1,
        });
    }
    let observed = created + TimeDelta::seconds(600);
    let body = json!({"post": {"id": "young", "platform": "twitter",
        "created_at": created.to_rfc3339()},
        "engagements": engagements, "observed_at": observed.to_rfc3339()});
    let (status, scored) = http_post(&app, "/api/v1/score", &body.to_string()).await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!(scored["counts"]["shares"], 40);
    let predicted = scored["predicted_final_shares"].as_f64().unwrap();
    assert!(predicted > 60.0, "{scored}");
    let interval = &scored["confidence_interval"];
    assert!(interval["lower"].as_f64().unwrap() >= 40.0);
    assert!(interval["upper"].as_f64().unwrap() > predicted);

    let cascade = TrueCascade {
        id: "young".into(),
        platform: Some(pulse::models::Platform::Twitter),
        author_followers: 0,
        created_at: created.timestamp() as f64,
        shares,
        prior: None,
    };
    let mut rows = Vec::new();
    report::predict(
        &Calibration::built_in(),
        &[&cascade],
        &[&cascade],
        0,
        &mut rows,
    );
    let ten_minutes = rows
        .iter()
        .find(|r| r.age == 0)
        .expect("a prediction at 10 minutes");
    assert!(
        (ten_minutes.pulse.point - predicted).abs() < 0.01,
        "evaluation {} vs service {predicted}",
        ten_minutes.pulse.point
    );
    app.shutdown().await;
}

/// A platform's viral threshold is the quantile of its finished cascades' shares; a cascade
/// without feedback counted as ten times its shares and a hundred more, so every platform's
/// learned bar stood some ten times too high and hardly a post was ever classified viral.
#[actix_rt::test]
async fn cascades_without_feedback_count_their_observed_shares_in_the_threshold() {
    let learned = thresholds_learned_after(&[
        finished_cascades("t", "twitter", "g", 600),
        finished_cascades("r", "reddit", "5", 600),
        final_shares("r", 7, 600),
    ])
    .await;
    // The 594th of 1..=600.
    assert_eq!(learned["twitter"], 594.0, "{learned:?}");
    // Feedback within its bound still wins over what was observed.
    assert_eq!(learned["reddit"], 7.0, "{learned:?}");
}

/// One producer's cascades set the viral threshold every producer's posts on the platform
/// were judged by: a hundred cascades of a million shares each (one engagement of count
/// 1,000,000 apiece) raised it until no one's post was viral, ten thousand of one share
/// lowered it until every post was. Each producer is judged by its own cascades; a platform's
/// threshold, for posts of producers without a history, is their median.
#[actix_rt::test]
async fn one_producers_cascades_do_not_move_the_threshold_of_anothers() {
    let honest = finished_cascades_of("a", "twitter", "key:a", "g", 600);
    let alone = learned_after(std::slice::from_ref(&honest)).await;
    assert_eq!(
        alone.get("twitter", Some("key:a")),
        Some(594.0),
        "{alone:?}"
    );
    let raised = learned_after(&[
        honest.clone(),
        finished_cascades_of("b", "twitter", "key:b", "1000000", 600),
    ])
    .await;
    let lowered = learned_after(&[
        honest.clone(),
        finished_cascades_of("b", "twitter", "key:b", "1", 10_000),
    ])
    .await;
    for learned in [&raised, &lowered] {
        assert_eq!(
            learned.get("twitter", Some("key:a")),
            Some(594.0),
            "{learned:?}"
        );
    }
    assert_eq!(raised.get("twitter", Some("key:b")), Some(1_000_000.0));
    assert_eq!(lowered.get("twitter", Some("key:b")), Some(1.0));
    // Among three producers, the one far from the others does not set the platform's.
    let three = learned_after(&[
        honest,
        finished_cascades_of("b", "twitter", "key:b", "1", 10_000),
        finished_cascades_of("c", "twitter", "source:c", "g * 2", 600),
    ])
    .await;
    assert_eq!(three.platforms()["twitter"], 594.0, "{three:?}");
    assert_eq!(three.get("twitter", Some("key:new")), Some(594.0));
}

/// A live cascade carries the threshold it was judged by: its producer's, learned from that
/// producer's finished cascades alone, whatever another producer's stored beside them.
#[actix_rt::test]
async fn a_live_cascade_is_judged_by_its_own_producers_threshold() {
    let env = TestEnv::migrated().await;
    env.pg()
        .await
        .batch_execute(
            &[
                finished_cascades("s", "twitter", "7", 600),
                finished_cascades_of("b", "twitter", "key:b", "1000000", 600),
            ]
            .join(" "),
        )
        .await
        .unwrap();
    let app = env.serve(quick_scores).await;
    let created = Utc::now() - TimeDelta::minutes(2);
    app.send_events(&cascade("own", 3, false, created)).await;
    let v = virality_with(&app, "own", 3).await;
    // Pooled, the bar was the million of the other producer's cascades.
    assert_eq!(v["current"]["threshold"], json!(7.0), "{v}");
    let stored: String = app
        .env
        .pg()
        .await
        .query_one(
            "SELECT producer FROM virality_cascades WHERE post_id = 'own'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, "stream");
    app.shutdown().await;
}

/// An analyst's report may raise a cascade's final count within its bound, never lower it
/// under the shares Pulse observed: reports of 0 on a platform's hundred largest cascades
/// pulled its bar from the 594th cascade's size to the 494th's.
#[actix_rt::test]
async fn a_final_count_reported_under_the_observed_shares_does_not_lower_the_threshold() {
    let learned = thresholds_learned_after(&[
        // Cascade g holds 601 - g shares: the first hundred are the largest.
        finished_cascades("m", "mastodon", "601 - g", 600),
        final_shares("m", 0, 100),
    ])
    .await;
    assert_eq!(learned["mastodon"], 594.0, "{learned:?}");
}

/// Every feedback report added a row: one analyst repeating a label with a note of 2,000 bytes
/// on a live post grew `virality_feedback` without bound, and retention never removed a row.
/// A post has one feedback record: a later report replaces the values it gives and keeps the
/// others (the final shares the thresholds read). The record goes with its deleted post's row,
/// and once no cascade of its post is left and its latest report is older than the history kept.
#[actix_rt::test]
async fn feedback_is_one_record_per_post_and_retention_removes_it() {
    let app = scoring_app().await;
    let pg = app.env.pg().await;
    let posts: Vec<String> = ["fb-kept", "fb-deleted", "fb-aged"]
        .map(|id| PostEvent::new(id, "Look at the new #PulsePhone camera").to_string())
        .to_vec();
    app.send_events(&posts).await;
    assert!(app.wait_for_posts(3, Duration::from_secs(60)).await);

    let (status, first) = app
        .post(
            "/api/v1/feedback",
            &json!({"post_id": "fb-kept", "final_shares": 120}),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let repeated = json!({"post_id": "fb-kept", "sentiment_label": "neutral",
        "note": "n".repeat(2_000)});
    let mut last = Value::Null;
    for _ in 0..1_000 {
        let (status, body) = app.post("/api/v1/feedback", &repeated).await;
        assert_eq!(status, 201, "{body}");
        last = body;
    }
    let rows: i64 = pg
        .scalar("SELECT count(*) FROM virality_feedback", &[])
        .await;
    assert_eq!(rows, 1, "a thousand reports on one post");
    assert_eq!(last["id"], first["id"]);
    assert_eq!(last["created_at"], first["created_at"]);
    assert_eq!(last["final_shares"], 120, "{last}");
    assert_eq!(last["sentiment_label"], "neutral", "{last}");
    assert_eq!(last["note"].as_str().map(str::len), Some(2_000));
    let shares: Option<i64> = pg
        .scalar(
            "SELECT final_shares FROM virality_feedback WHERE post_id = 'fb-kept'",
            &[],
        )
        .await;
    assert_eq!(shares, Some(120), "a later label keeps the final shares");

    for id in ["fb-deleted", "fb-aged"] {
        let (status, body) = app
            .post(
                "/api/v1/feedback",
                &json!({"post_id": id, "final_shares": 5, "note": "quoting the post"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // The deleted post's record goes with its row.
    super::deletions::delete_post(&app, "fb-deleted").await;
    app.env.sweep_arrived_long_ago("id = 'fb-deleted'").await;
    let left: Vec<String> = pg
        .column(
            "SELECT post_id FROM virality_feedback ORDER BY post_id",
            &[],
        )
        .await;
    assert_eq!(left, ["fb-aged", "fb-kept"]);
    // Both remaining records were last reported longer ago than the history is kept; only
    // one post still has a cascade, which its record corrects.
    pg.batch_execute(
        "UPDATE virality_feedback SET updated_at = now() - interval '100 days'; \
         INSERT INTO virality_cascades (post_id, platform, created_at, observed_at, status, \
             shares, model_name, model_version, params_hash) \
         VALUES ('fb-kept', 'twitter', now(), now(), 'finished', 3, 'm', '1', 'h');",
    )
    .await
    .unwrap();
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    let policy =
        pulse::actors::retention::RetentionPolicy::of(&pulse::config::Settings::default().store);
    pulse::actors::retention::sweep(&pool, &policy)
        .await
        .unwrap();
    let left: Vec<String> = pg
        .column("SELECT post_id FROM virality_feedback", &[])
        .await;
    assert_eq!(left, ["fb-kept"]);
    app.shutdown().await;
}

/// Momentum rows are written when a key moves: one engagement counted a million times on a
/// post tagged `#junk` left the tag at 200,000 a minute, first in the list until retention
/// deleted its row. A row not updated within the momentum window is of a key with no
/// engagement in it: the list leaves it out, whether or not a tracker zeroed it.
#[actix_rt::test]
async fn a_key_without_engagement_in_the_momentum_window_leaves_the_momentum_list() {
    let app = scoring_app().await;
    app.env
        .pg()
        .await
        .batch_execute(
            "INSERT INTO virality_momentum (dimension, key, velocity, acceleration, posts, updated_at) \
             VALUES ('hashtag', 'junk', 200000, 40000, 0, now() - interval '1 hour'), \
                    ('hashtag', 'launch', 3, 0.5, 0, now()), \
                    ('product', 'pulse-phone', 2, 0, 0, now() - interval '6 minutes')",
        )
        .await
        .unwrap();
    let (status, tags) = app.get("/api/v1/trending/momentum?dimension=hashtag").await;
    assert_eq!(status, 200, "{tags}");
    assert_eq!(strings(&tags["items"], "key"), ["launch"], "{tags}");
    let (_, products) = app.get("/api/v1/trending/momentum?dimension=product").await;
    assert_eq!(products["items"], json!([]), "{products}");
    app.shutdown().await;
}
