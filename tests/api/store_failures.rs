//! Writes PostgreSQL fails with an error that may be the data's or its own (class XX, raised
//! here by a real trigger as a datum's own check raises it): a post that fails alike every
//! time is split out and dead-lettered once other writes vouch for the database; a database
//! that fails every write alike dead-letters nothing and stores all once mended.

use crate::common;
use std::time::Duration;

use common::*;

/// A migrated environment on which every insert into `posts` whose text holds the returned
/// marker (named after `name`) fails with `XX000`, and a Redis client of it.
async fn failing_posts(name: &str) -> (TestEnv, String, fred::clients::Client) {
    let env = TestEnv::migrated().await;
    let marker = unique(name);
    let sql = format!(
        "CREATE FUNCTION fail_marked() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF strpos(NEW.text, '{marker}') > 0 THEN \
         RAISE EXCEPTION 'a datum the server cannot take' USING ERRCODE = 'XX000'; END IF; \
         RETURN NEW; END $$; \
         CREATE TRIGGER fail_marked BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION fail_marked();"
    );
    env.pg().await.batch_execute(&sql).await.unwrap();
    let redis = env.redis().await;
    (env, marker, redis)
}

/// The post first in its batch of 32, the half that holds it always tried first: nothing
/// commits before it fails alone, so it is handed back, and dead-lettered once its siblings
/// committed.
#[actix_rt::test]
async fn a_post_postgresql_fails_alike_every_time_is_split_out_and_dead_lettered() {
    let (env, marker, redis) = failing_posts("fails").await;
    // Appended before Pulse starts, so that its first read takes all 32 as one batch.
    let failing = env
        .xadd_post(&redis, "failing", &format!("a post {marker}"))
        .await;
    for i in 1..32 {
        env.xadd_post(&redis, &format!("fine-{i}"), "a fine post")
            .await;
    }
    let app = env.serve(|s| s.ingest.read_batch = 32).await;
    let env = &app.env;

    assert!(env.stored_exactly(31, Duration::from_secs(60)).await);
    assert!(env.drained(&redis, Duration::from_secs(60)).await);
    let dead = env.dead_letters(&redis).await;
    assert_eq!(dead.len(), 1, "{}", env.dead_letters_text(&redis).await);
    let text = env.dead_letters_text(&redis).await;
    assert!(text.contains(&failing), "{text}");
    assert!(text.contains("storage_refused"), "{text}");
    assert!(text.contains("XX000"), "{text}");
    assert_metric_counted(&app, "pulse_store_errors_total{error_type=\"failed\"}").await;
    app.shutdown().await;
}

/// Every post fails alike: the batch is split down to each post once, none commits, so none is
/// dead-lettered; the batch is tried again whole until the database is mended, then stored once.
#[actix_rt::test]
async fn a_database_failing_every_write_alike_loses_nothing_and_stores_all_once_mended() {
    let (env, marker, redis) = failing_posts("broken").await;
    for i in 0..4 {
        env.xadd_post(&redis, &format!("p-{i}"), &format!("post {i} {marker}"))
            .await;
    }
    let app = env.serve(|s| s.ingest.read_batch = 4).await;
    let env = &app.env;

    // Three tries on each of the 7 parts of the split (4, 2 + 2, 1 + 1 + 1 + 1), then more on
    // the whole batch: the split is over and the batch waits.
    let failed = || {
        metric_at(
            app.address(),
            "pulse_store_errors_total",
            "error_type=\"failed\"",
        )
    };
    let waited = wait_until(Duration::from_secs(60), || async { failed().await >= 24.0 }).await;
    assert!(waited, "failures counted: {}", failed().await);
    assert_eq!(env.post_count().await, 0);
    let text = env.dead_letters_text(&redis).await;
    assert!(env.dead_letters(&redis).await.is_empty(), "{text}");

    env.pg()
        .await
        .batch_execute("DROP TRIGGER fail_marked ON posts")
        .await
        .unwrap();
    assert!(env.stored_exactly(4, Duration::from_secs(30)).await);
    assert!(env.drained(&redis, Duration::from_secs(30)).await);
    assert!(env.dead_letters(&redis).await.is_empty());
    app.shutdown().await;
}
