//! The pipeline on the real PostgreSQL and Redis: stored once with its analysis,
//! acknowledged, replays absorbed, bad entries dead-lettered, crashed stages restarted.

use crate::common;
use std::time::Duration;

use super::deletions::{comes_marked_deleted, marked_deleted};
use common::*;
use fred::prelude::*;
#[cfg(feature = "fault-injection")]
use pulse::actors::Stage;

/// Stream entry fields as a producer wrote them.
type Fields = Vec<(&'static str, Vec<u8>)>;

/// Whether `letter` is the dead letter of the stream entry `id`.
fn letter_of(letter: &pulse::streams::entry::RawEntry, id: &str) -> bool {
    letter
        .fields
        .iter()
        .any(|(k, v)| k == "dead_entry_id" && v == id.as_bytes())
}

#[actix_rt::test]
async fn an_xadded_post_is_stored_once_with_its_analysis_and_acknowledged() {
    let app = spawn_app().await;
    let env = &app.env;
    let redis = env.redis().await;
    let json = post_json("p-1", "I absolutely love the new phone, great battery!");
    xadd_event(&redis, &env.stream, &json).await;

    assert!(env.stored_exactly(1, Duration::from_secs(20)).await);
    let row = env
        .row(
            "SELECT sentiment_label, sentiment_score, model, city, product FROM posts WHERE id = 'p-1'",
            &[],
        )
        .await;
    assert_eq!(row.get::<_, String>(0), "positive");
    assert!(row.get::<_, f32>(1) > 0.3);
    assert_eq!(row.get::<_, String>(2), "lexicon-vader@1");
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some("Lyon"));
    assert_eq!(
        row.get::<_, Option<String>>(4).as_deref(),
        Some("pulse-phone")
    );
    assert!(env.drained(&redis, Duration::from_secs(10)).await);
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_deleted_post_is_marked_and_counted_out_whichever_comes_first() {
    let app = spawn_app().await;
    let env = &app.env;
    let redis = env.redis().await;
    let pg = env.pg().await;
    let delete = |id: &str| {
        serde_json::json!({"type": "delete", "post_id": id, "at": chrono::Utc::now().to_rfc3339()})
            .to_string()
    };
    let counted = || async {
        pg.scalar::<i64>(
            "SELECT coalesce(sum(posts), 0)::int8 FROM metric_rollups WHERE dimension = 'overall'",
            &[],
        )
        .await
    };

    // Stored, then deleted (the deletion delivered twice).
    env.xadd_post(&redis, "del-early", "Great phone").await;
    env.xadd_post(&redis, "kept", "Great watch").await;
    assert!(wait_until(Duration::from_secs(20), || async { counted().await == 2 }).await);
    xadd_event(&redis, &env.stream, &delete("del-early")).await;
    xadd_event(&redis, &env.stream, &delete("del-early")).await;
    assert!(comes_marked_deleted(&pg, "del-early", Duration::from_secs(20)).await);
    // The deletion came first: the post is stored deleted and never counted.
    xadd_event(&redis, &env.stream, &delete("del-late")).await;
    env.xadd_post(&redis, "del-late", "Terrible phone").await;
    assert!(comes_marked_deleted(&pg, "del-late", Duration::from_secs(20)).await);
    assert!(env.drained(&redis, Duration::from_secs(20)).await);
    // Two batches in flight at once can each miss the other (the post stored live, the
    // deletion finding no post); the race is repaired within seconds.
    assert!(
        wait_until(Duration::from_secs(20), || async { counted().await == 1 }).await,
        "only the kept post counts"
    );
    assert_eq!(marked_deleted(&pg, "kept").await, Some(false));
    assert_eq!(listed_post_ids(&app, "").await, ["kept"]);
    let (status, one) = http_get(&app, "/api/v1/posts/del-early").await;
    assert_eq!(status, 200);
    assert!(one["deleted_at"].is_string(), "{one}");
    let metrics = metrics_text(&app).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pulse_posts_deleted_total ")
                && l != "pulse_posts_deleted_total 0"),
        "{metrics}"
    );

    // A deletion committed while the post's own batch was in flight, so that neither saw the
    // other (written here as that race leaves it): found and marked within seconds.
    pg.execute(
        "INSERT INTO post_deletions (post_id, at, stream_id) VALUES ('kept', now(), 'raced')",
        &[],
    )
    .await
    .unwrap();
    assert!(comes_marked_deleted(&pg, "kept", Duration::from_secs(20)).await);
    assert!(wait_until(Duration::from_secs(10), || async { counted().await == 0 }).await);
    app.shutdown().await;
}

#[actix_rt::test]
async fn the_same_entries_delivered_twice_are_stored_once() {
    let app = spawn_app().await;
    let env = &app.env;
    let redis = env.redis().await;
    for i in 0..20 {
        env.xadd_post(&redis, &format!("dup-{i}"), "fine, thanks")
            .await;
    }
    let engagement = serde_json::json!({"type": "engagement", "post_id": "dup-0", "kind": "like",
        "at": chrono::Utc::now().to_rfc3339()})
    .to_string();
    xadd_event(&redis, &env.stream, &engagement).await;
    // The same post id under a second entry, as a producer retry would send it.
    env.xadd_post(&redis, "dup-3", "fine, thanks").await;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            env.pending(&redis).await == 0 && env.post_count().await == 20
        })
        .await
    );

    // Rewind the group: every entry is delivered a second time.
    let _: Value = redis
        .custom(
            fred::cmd!("XGROUP"),
            vec!["SETID", env.stream.as_str(), env.group.as_str(), "0"],
        )
        .await
        .unwrap();
    env.xadd_post(&redis, "marker", "last one").await;
    assert!(env.stored_exactly(21, Duration::from_secs(20)).await);
    assert!(env.drained(&redis, Duration::from_secs(10)).await);
    let pg = env.pg().await;
    let engagements: i64 = pg.scalar("SELECT count(*) FROM engagements", &[]).await;
    assert_eq!(engagements, 1);
    assert_eq!(env.post_count().await, 21);
    app.shutdown().await;
}

#[actix_rt::test]
async fn bad_entries_go_to_the_dead_letter_stream_with_a_reason_and_the_pipeline_goes_on() {
    let app = spawn_app().await;
    let env = &app.env;
    let redis = env.redis().await;

    let mut missing = serde_json::from_str::<serde_json::Value>(&post_json("m", "x")).unwrap();
    missing.as_object_mut().unwrap().remove("author");
    let mut wrong_type = serde_json::from_str::<serde_json::Value>(&post_json("w", "x")).unwrap();
    wrong_type["created_at"] = serde_json::json!(12345);
    let oversize = post_json("o", &"a".repeat(pulse::models::event::MAX_TEXT_BYTES + 10));
    // A product that passes for another (a zero-width space inside) is a label no one can tell.
    let mut unseen = serde_json::from_str::<serde_json::Value>(&post_json("z", "x")).unwrap();
    unseen["product"] = serde_json::json!("pulse\u{200B}phone");

    let cases: Vec<(Fields, &str)> = vec![
        (
            vec![("event", b"{\"type\": \"post\", ".to_vec())],
            "malformed",
        ),
        (
            vec![("event", missing.to_string().into_bytes())],
            "malformed",
        ),
        (
            vec![("event", wrong_type.to_string().into_bytes())],
            "malformed",
        ),
        (vec![("event", oversize.into_bytes())], "invalid_field"),
        (
            vec![("event", unseen.to_string().into_bytes())],
            "invalid_field",
        ),
        (
            vec![("event", vec![b'{', 0xc3, 0x28, b'}'])],
            "invalid_utf8",
        ),
        (vec![("payload", b"{}".to_vec())], "missing_event_field"),
    ];
    let mut ids = Vec::new();
    for (fields, _) in &cases {
        let fields = fields
            .iter()
            .map(|(k, v)| (*k, Value::Bytes(v.clone().into())))
            .collect();
        ids.push(xadd_fields(&redis, &env.stream, fields).await);
    }
    env.xadd_post(&redis, "after-bad", "the pipeline goes on")
        .await;

    assert!(env.stored_exactly(1, Duration::from_secs(20)).await);
    assert!(env.drained(&redis, Duration::from_secs(10)).await);
    let dead = env.dead_letters(&redis).await;
    assert_eq!(dead.len(), cases.len(), "one dead letter per bad entry");
    for ((fields, class), id) in cases.iter().zip(&ids) {
        let letter = dead
            .iter()
            .find(|d| letter_of(d, id))
            .unwrap_or_else(|| panic!("no dead letter for {id}"));
        let field = |name: &str| {
            letter
                .fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(field("dead_reason_class"), class.as_bytes());
        assert!(!field("dead_reason").is_empty());
        // The original fields travel verbatim, bytes included.
        for (name, value) in fields {
            assert_eq!(&field(name), value);
        }
    }
    assert_metrics_hold(&app, &["pulse_dead_letters_total{reason=\"invalid_utf8\"}"]).await;
    app.shutdown().await;
}

/// Dead-lettering whose reply is lost after Redis applied it (the letter appended, the entry
/// acknowledged), as a broken connection would leave it: the dead-lettering is tried again,
/// and the retry writes no second letter.
#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_dead_letter_whose_reply_was_lost_is_written_once() {
    let app = spawn_app().await;
    let env = &app.env;
    let redis = env.redis().await;
    app.pipeline().inject_fault(Stage::DeadLetters);
    let malformed = Value::Bytes(b"{\"type\": \"post\", ".to_vec().into());
    let bad = xadd_fields(&redis, &env.stream, vec![("event", malformed)]).await;
    env.xadd_post(&redis, "after-lost-reply", "the pipeline goes on")
        .await;

    assert!(env.stored_exactly(1, Duration::from_secs(20)).await);
    // Both entries were read by then; their batches, the retry included, are done once
    // nothing is in flight.
    let ingest = &app.pipeline().ingest;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            ingest.in_flight() == 0
        })
        .await
    );
    assert_eq!(env.pending(&redis).await, 0);
    let metrics = metrics_text(&app).await;
    assert!(
        !metrics.contains("pulse_pipeline_batch_retries_total{stage=\"ack\"} 0"),
        "the lost reply was retried: {metrics}"
    );
    let dead = env.dead_letters(&redis).await;
    let letters = dead.iter().filter(|d| letter_of(d, &bad)).count();
    assert_eq!(letters, 1, "{dead:?}");
    assert_eq!(dead.len(), 1, "{dead:?}");
    app.shutdown().await;
}

/// Appends `events` in one transaction, so that one read takes them all: one batch. The
/// first is a truncated JSON, dead-lettered, so that the batch's dead-lettering is the step
/// whose reply the injected fault loses.
#[cfg(feature = "fault-injection")]
async fn xadd_beside_a_dead_letter(redis: &Client, stream: &str, events: &[serde_json::Value]) {
    let mut encoded = vec!["{\"type\": \"post\", ".to_string()];
    encoded.extend(events.iter().map(serde_json::Value::to_string));
    pulse::streams::producer::xadd_events_atomically(redis, stream, &encoded, &[])
        .await
        .expect("xadd");
}

/// The lost reply of the dead-lettering comes after the store committed the batch: the retry
/// acknowledges again without storing again (which would find the post written, or marked
/// deleted, and report nothing new), so the post and then its deletion still reach the live
/// subscribers.
#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_batch_that_lost_its_dead_letter_reply_is_still_pushed_live() {
    let app = spawn_app().await;
    let env = &app.env;
    let redis = env.redis().await;
    let mut live = super::deletions::Subscriber::posts(&app).await;
    let id = "beside-lost-reply";
    app.pipeline().inject_fault(Stage::DeadLetters);
    let post = serde_json::from_str(&post_json(id, "a fine phone")).unwrap();
    xadd_beside_a_dead_letter(&redis, &env.stream, &[post]).await;
    live.until(|m| m["type"] == "message:new" && m["data"]["id"] == id)
        .await;
    assert!(env.drained(&redis, Duration::from_secs(10)).await);

    app.pipeline().inject_fault(Stage::DeadLetters);
    let deletion = super::deletions::deletion(id, chrono::Utc::now());
    xadd_beside_a_dead_letter(&redis, &env.stream, &[deletion]).await;
    let gone = live
        .until(|m| m["type"] == "message:deleted" && m["data"]["id"] == id)
        .await;
    assert!(
        gone.last().unwrap()["data"]["deleted_at"].is_string(),
        "{gone:?}"
    );
    assert!(env.drained(&redis, Duration::from_secs(10)).await);
    assert_metric_counted(&app, "pulse_pipeline_batch_retries_total{stage=\"ack\"}").await;
    assert_eq!(env.dead_letters(&redis).await.len(), 2);
    app.shutdown().await;
}

#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_crashed_stage_is_restarted_and_the_process_keeps_serving() {
    let app = spawn_app().await;
    let env = &app.env;
    let redis = env.redis().await;
    env.xadd_post(&redis, "before", "hello").await;
    assert!(env.stored_exactly(1, Duration::from_secs(20)).await);

    for (n, stage) in [Stage::Store, Stage::Ingester, Stage::Analyzer]
        .into_iter()
        .enumerate()
    {
        app.pipeline().inject_fault(stage);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 0..10 {
            let id = format!("after-{n}-{i}");
            env.xadd_post(&redis, &id, "still here, still great").await;
        }
        let expected = 1 + 10 * (n as i64 + 1);
        assert!(
            env.stored_exactly(expected, Duration::from_secs(20)).await,
            "posts after a {stage:?} crash are stored"
        );
    }
    let health = reqwest::get(format!("http://{}/health", app.address()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = metrics_text(&app).await;
    for actor in ["ingester", "analyzer"] {
        assert!(
            metrics.contains(&format!("pulse_actor_restarts_total{{actor=\"{actor}\"}}")),
            "{actor} restart counted"
        );
    }
    // The store is a call, not an actor: its panic is caught, counted and the write retried.
    assert!(
        metrics.contains("pulse_store_errors_total{error_type=\"panicked\"} 1"),
        "the store's panic is counted"
    );
    assert!(env.drained(&redis, Duration::from_secs(10)).await);
    app.shutdown().await;
}

/// A post that makes the analysis panic every time, in a full batch: the batch is analysed
/// twice (a transient fault would pass the second time), then split down to the post, each
/// half that holds it analysed once, since the split is what isolates it. Every panic rebuilds
/// the backend, which for the model means reloading it.
#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_post_that_always_panics_the_analysis_is_split_out_without_a_retry_per_half() {
    use pulse::actors::analyzer::faults;
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let poison_text = format!("{} {}", faults::PANIC_MARKER, unique("poison"));
    // Appended before Pulse starts, so that its first read takes all 32 as one batch.
    let mut poison = String::new();
    for i in 0..32 {
        if i == 20 {
            poison = env.xadd_post(&redis, "poison", &poison_text).await;
        } else {
            env.xadd_post(&redis, &format!("fine-{i}"), "a fine post")
                .await;
        }
    }
    let app = env.serve(|s| s.ingest.read_batch = 32).await;
    let env = &app.env;

    assert!(env.stored_exactly(31, Duration::from_secs(20)).await);
    assert!(env.drained(&redis, Duration::from_secs(10)).await);
    // Twice on the 32, then once on each half of 16, 8, 4, 2 and 1 that holds it.
    assert_eq!(faults::panics_on(&poison_text), 7);
    let text = env.dead_letters_text(&redis).await;
    assert!(text.contains(&poison), "{text}");
    app.shutdown().await;
}

/// A text that makes the analysis panic, sent to `POST /api/v1/analyze`: the backend is
/// rebuilt and counted as a restart of the analyzer, as a panic on a pipeline batch is, and the
/// next request is answered.
#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn a_panic_on_direct_texts_is_counted_as_an_analyzer_restart() {
    use pulse::actors::analyzer::faults;
    let app = spawn_app().await;
    let poison_text = format!("{} {}", faults::PANIC_MARKER, unique("direct"));
    let (status, body) = app
        .post(
            "/api/v1/analyze",
            &serde_json::json!({"texts": [poison_text]}),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(faults::panics_on(&poison_text), 1);
    // Counted from 0 when the pool starts: the series is there, and no longer 0.
    let restarts = "pulse_actor_restarts_total{actor=\"analyzer\"}";
    let metrics = metrics_text(&app).await;
    assert!(metrics.contains(restarts), "{metrics}");
    assert!(!metrics.contains(&format!("{restarts} 0")), "{metrics}");

    // While the backend restarts, the share is busy: a 503 asking to retry, as documented.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = app
            .post(
                "/api/v1/analyze",
                &serde_json::json!({"texts": ["a fine day"]}),
            )
            .await;
        if status == 503 && body["error"]["code"] == "busy" && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(status, 200, "{body}");
        break;
    }
    app.shutdown().await;
}

/// Raw posts are kept for `store.retention_days` after they reached Pulse: a post that
/// arrived long ago goes, a backfilled post created long ago but just arrived stays.
#[actix_rt::test]
async fn retention_removes_posts_that_arrived_before_the_limit_and_keeps_backfill() {
    let app = spawn_app().await;
    let env = &app.env;
    let redis = env.redis().await;
    let mut backfill =
        serde_json::from_str::<serde_json::Value>(&post_json("backfill", "ancient news")).unwrap();
    backfill["created_at"] =
        serde_json::json!((chrono::Utc::now() - chrono::Duration::days(900)).to_rfc3339());
    xadd_event(&redis, &env.stream, &backfill.to_string()).await;
    env.xadd_post(&redis, "arrived-long-ago", "old news").await;
    env.xadd_post(&redis, "new", "fresh news").await;
    assert!(env.stored_exactly(3, Duration::from_secs(20)).await);
    let deleted = env.sweep_arrived_long_ago("id = 'arrived-long-ago'").await;
    assert_eq!(deleted, 1);
    let mut left: Vec<String> = env.column("SELECT id FROM posts", &[]).await;
    left.sort();
    assert_eq!(left, vec!["backfill".to_string(), "new".to_string()]);
    app.shutdown().await;
}

/// An entry redelivered past `max_deliveries` is not dead-lettered for that alone (a process
/// in a crash loop takes good entries down with it): it is tried on its own, and only an
/// entry whose lone trials were cut short `MAX_TRIALS` times (it took its process down by
/// itself) goes to the dead letters.
#[actix_rt::test]
async fn an_often_redelivered_entry_is_tried_alone_and_dead_lettered_only_if_its_trials_died() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let good = env.xadd_post(&redis, "worn-good", "a fine post").await;
    let poison = env.xadd_post(&redis, "worn-poison", "a bad one").await;
    // Another consumer reads them, claims them again, and dies without acknowledging them.
    env.read_as(&redis, "ghost", 2).await;
    for id in [&good, &poison] {
        let _: Value = redis
            .custom(
                fred::cmd!("XCLAIM"),
                vec![
                    env.stream.as_str(),
                    env.group.as_str(),
                    "ghost",
                    "0",
                    id.as_str(),
                ],
            )
            .await
            .unwrap();
    }
    // The poison entry's lone trials were cut short as often as allowed.
    let _: () = redis
        .set(
            format!("{}:trial:{poison}", env.stream),
            pulse::actors::ingester::MAX_TRIALS,
            None,
            None,
            false,
        )
        .await
        .unwrap();
    let app = env
        .serve(|s| {
            s.ingest.max_deliveries = 2;
            s.ingest.claim_idle_ms = 0;
        })
        .await;
    let env = &app.env;

    assert!(env.drained(&redis, Duration::from_secs(20)).await);
    let text = env.dead_letters_text(&redis).await;
    assert!(text.contains("max_deliveries"), "{text}");
    assert!(text.contains(&poison), "{text}");
    assert!(!text.contains(&good), "{text}");
    let stored: Vec<String> = env.pg().await.column("SELECT id FROM posts", &[]).await;
    assert_eq!(stored, vec!["worn-good".to_string()]);
    let trial: Option<String> = redis
        .get(format!("{}:trial:{good}", env.stream))
        .await
        .unwrap();
    assert_eq!(trial, None, "a finished trial is forgotten");
    app.shutdown().await;
}

/// A consumer that died holding more entries than this process may have in flight: they are
/// claimed a few at a time, never more than its credits, and every one is stored.
#[actix_rt::test]
async fn entries_left_by_a_dead_consumer_beyond_the_in_flight_limit_are_all_claimed() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    for i in 0..12 {
        env.xadd_post(&redis, &format!("left-{i}"), "left behind")
            .await;
    }
    env.read_as(&redis, "ghost", 12).await;
    let app = env
        .serve(|s| {
            s.ingest.claim_idle_ms = 0;
            s.ingest.read_batch = 10;
            s.ingest.max_in_flight = 4;
        })
        .await;
    let env = &app.env;
    env.assert_stored(12, Duration::from_secs(30), "posts")
        .await;
    assert!(env.drained(&redis, Duration::from_secs(20)).await);
    app.shutdown().await;
}

#[actix_rt::test]
async fn consumers_of_processes_that_are_gone_are_removed_from_the_group() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    // A consumer that read an entry, acknowledged it and went away.
    let id = env.xadd_post(&redis, "seen-by-gone", "hello").await;
    env.read_as(&redis, "gone", 1).await;
    let _: i64 = redis
        .xack(env.stream.as_str(), env.group.as_str(), id.as_str())
        .await
        .unwrap();
    let before: Value = redis
        .xinfo_consumers(env.stream.as_str(), env.group.as_str())
        .await
        .unwrap();
    assert!(format!("{before:?}").contains("\"gone\""), "{before:?}");
    let app = env
        .serve(|s| {
            s.redis.stale_consumer_secs = 1;
        })
        .await;
    let env = &app.env;
    // Our consumer exists once something is delivered to it.
    env.xadd_post(&redis, "seen-by-us", "hello").await;
    assert!(env.stored_exactly(1, Duration::from_secs(20)).await);
    let names = || async {
        let consumers: Value = redis
            .xinfo_consumers(env.stream.as_str(), env.group.as_str())
            .await
            .unwrap();
        format!("{consumers:?}")
    };
    assert!(
        wait_until(Duration::from_secs(30), || async {
            !names().await.contains("\"gone\"")
        })
        .await,
        "the stale consumer is removed"
    );
    let listed = names().await;
    assert!(
        listed.contains(app.pipeline().consumer()),
        "our own consumer stays: {listed}"
    );
    app.shutdown().await;
}

/// A plan PostgreSQL cached for the store's statement while its tables were nearly empty
/// stays until they are analysed; a table that doubled since its last analysis is analysed
/// (its key columns), once.
#[actix_rt::test]
async fn a_store_table_that_doubled_since_its_last_analysis_is_analysed_once() {
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    pg.batch_execute(
        "INSERT INTO post_deletions (post_id, at, stream_id, producer) \
         SELECT 'p' || i, now(), 's' || i, 'stream' FROM generate_series(1, 600) AS i",
    )
    .await
    .unwrap();
    // The server counts the inserted rows a moment after the transaction ends.
    let analysed = wait_until(Duration::from_secs(30), || async {
        pulse::db::statistics::analyze_grown(&pg)
            .await
            .unwrap()
            .contains(&"post_deletions")
    })
    .await;
    assert!(analysed, "post_deletions was never found grown");
    let rows: f32 = pg
        .value_of("SELECT reltuples FROM pg_class WHERE oid = 'post_deletions'::regclass")
        .await;
    assert_eq!(rows, 600.0);
    assert_eq!(
        pulse::db::statistics::analyze_grown(&pg).await.unwrap(),
        Vec::<&str>::new(),
        "nothing grew since"
    );
}

/// The group monitor trims the entries the group has acknowledged, so Redis memory stays
/// bounded however long the stream runs.
#[actix_rt::test]
async fn acknowledged_entries_are_trimmed_from_the_stream() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    xadd_posts(&redis, &env.stream, "trim", 0..400).await;
    assert!(env.stored_exactly(400, Duration::from_secs(60)).await);
    // `XTRIM MINID ~` removes whole nodes of the stream's radix tree (100 entries each).
    let trimmed = wait_until(Duration::from_secs(30), || async {
        redis
            .xlen::<i64, _>(env.stream.as_str())
            .await
            .unwrap_or(i64::MAX)
            < 400
    })
    .await;
    assert!(trimmed, "the acknowledged entries stayed in the stream");
    app.shutdown().await;
}

/// Processes of one group with different settings for what becomes of an entry decided the
/// same entries differently, unnoticed (5 stored and 25 dead-lettered of the same 30): each
/// now publishes a fingerprint of those settings, and the difference shows.
#[actix_rt::test]
async fn processes_of_one_group_that_decide_entries_differently_are_told_apart() {
    let a = spawn_app().await;
    let same = a.spawn_replica().await;
    let fingerprints = || async {
        let (_, status) = a.get("/api/v1/pipeline").await;
        status["group_settings"]
            .as_array()
            .map(|members| {
                members
                    .iter()
                    .map(|m| m["fingerprint"].as_str().unwrap_or("").to_string())
                    .collect::<Vec<String>>()
            })
            .unwrap_or_default()
    };
    let agreed = wait_until(Duration::from_secs(30), || async {
        let prints = fingerprints().await;
        prints.len() == 2 && prints[0] == prints[1]
    })
    .await;
    assert!(agreed, "{:?}", fingerprints().await);
    let other = a
        .spawn_replica_with(|s| s.ingest.max_entry_bytes = 1_024)
        .await;
    let told = wait_until(Duration::from_secs(30), || async {
        let prints: std::collections::BTreeSet<String> = fingerprints().await.into_iter().collect();
        prints.len() == 2
            && metrics_text(&a)
                .await
                .contains("pulse_group_settings_differ 1")
    })
    .await;
    assert!(told, "{:?}", fingerprints().await);
    other.shutdown().await;
    same.shutdown().await;
    a.shutdown().await;
}

/// A consumer that claims a dead one's entries may hold entries of its own between them; each
/// claimed entry still learns how often it was delivered (what sends an entry that keeps
/// killing processes to be tried alone), however many of its own lie between.
#[actix_rt::test]
async fn claimed_entries_learn_their_delivery_counts_past_the_claimers_own() {
    const EACH: u64 = 20;
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let mut ids = Vec::new();
    for i in 0..3 * EACH {
        ids.push(env.xadd_post(&redis, &format!("c-{i}"), "claimed").await);
    }
    env.read_as(&redis, "dead", EACH).await;
    env.read_as(&redis, "alive", EACH).await;
    env.read_as(&redis, "dead", EACH).await;
    let dead: Vec<&String> = ids[..EACH as usize]
        .iter()
        .chain(&ids[2 * EACH as usize..])
        .collect();
    let mut args = vec![
        env.stream.clone(),
        env.group.clone(),
        "alive".into(),
        "0".into(),
    ];
    args.extend(dead.iter().map(|id| id.to_string()));
    let _: Value = redis.custom(fred::cmd!("XCLAIM"), args).await.unwrap();
    let mut entries: Vec<pulse::streams::entry::RawEntry> = dead
        .iter()
        .map(|id| pulse::streams::entry::RawEntry {
            id: id.to_string(),
            fields: Vec::new(),
            deliveries: 1,
            cut: None,
            seen_at_ms: None,
        })
        .collect();
    let member = pulse::streams::group::Member {
        stream: &env.stream,
        group: &env.group,
        consumer: "alive",
    };
    pulse::streams::group::fill_delivery_counts(&redis, member, &mut entries).await;
    let counts: Vec<u64> = entries.iter().map(|e| e.deliveries).collect();
    assert_eq!(counts, vec![2; 2 * EACH as usize]);
}
