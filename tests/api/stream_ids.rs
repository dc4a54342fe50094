//! The stream against a producer with write access to it that uses Redis's own options: an
//! entry appended with the largest possible id, and entries trimmed before the group read them.

use crate::common;
use std::time::Duration;

use common::*;
use fred::prelude::*;
use pulse::streams::upkeep::LAST_POSSIBLE_ID;

const WAIT: Duration = Duration::from_secs(60);

/// Queues or sends `XADD stream id event <json>` on `client` (a client, or a transaction).
async fn append<C: StreamsInterface + Sync, R: FromValue>(
    client: &C,
    stream: &str,
    id: &str,
    json: &str,
) -> Result<R, Error> {
    client
        .xadd(stream, false, None::<()>, id, vec![("event", json)])
        .await
}

/// Whether the counter `series` has counted anything.
async fn counted(app: &TestApp, series: &str) -> bool {
    metrics_text(&app.app)
        .await
        .lines()
        .any(|l| l.starts_with(series) && !l.ends_with(" 0"))
}

/// After an entry appended with the largest possible id, Redis refused every append (`XADD
/// *`): Pulse's intake, its sources and every producer, for good, as nothing of Pulse set the
/// ids back. The group reads that entry as any other, then the monitor sets them back.
#[actix_rt::test]
async fn an_entry_with_the_largest_possible_id_does_not_stop_every_later_append() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    xadd_posts(&redis, &env.stream, "before", 0..3).await;
    let last = post_json("at-the-end", "appended with the last id there is");
    let _: String = append(&redis, &env.stream, LAST_POSSIBLE_ID, &last)
        .await
        .unwrap();
    assert!(
        env.stored_exactly(4, WAIT).await,
        "the entries were not stored"
    );
    // Each try either appends nothing (refused) or appends one entry, and then stops.
    let after = post_json("after-it", "appended once the ids are set back");
    let appended = wait_until(WAIT, || async {
        append::<_, String>(&redis, &env.stream, "*", &after)
            .await
            .is_ok()
    })
    .await;
    assert!(appended, "appends are still refused");
    assert!(
        env.stored_exactly(5, WAIT).await,
        "the later entry was not stored"
    );
    assert!(counted(&app, "pulse_stream_ids_reset_total").await);
    // The intake appends again too.
    let (status, body) = app
        .post(
            "/api/v1/events",
            &serde_json::json!({"type": "post", "id": "through-http", "text": "hello",
                "platform": "twitter", "author": {"id": "u1", "followers": 0},
                "created_at": chrono::Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(env.stored_exactly(6, WAIT).await);
    app.shutdown().await;
}

/// An `XADD ... MAXLEN 0` (or an `XTRIM`) by another client removed entries the group had not
/// read: their producers had been told they were taken, and nothing said they were lost.
#[actix_rt::test]
async fn entries_removed_before_the_group_read_them_are_reported() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    xadd_posts(&redis, &env.stream, "read", 0..2).await;
    assert!(env.stored_exactly(2, WAIT).await);
    assert!(!counted(&app, "pulse_stream_unread_entries_removed_total").await);
    // Appended and trimmed in one transaction: the group never sees them.
    let transaction = redis.multi();
    for n in 0..3 {
        let event = post_json(&format!("never-read-{n}"), "trimmed before it was read");
        let _: () = append(&transaction, &env.stream, "*", &event)
            .await
            .unwrap();
    }
    let _: () = transaction
        .xtrim(env.stream.as_str(), ("MAXLEN", 0))
        .await
        .unwrap();
    let _: Value = transaction.exec(true).await.unwrap();
    assert!(
        wait_until(WAIT, || async {
            counted(&app, "pulse_stream_unread_entries_removed_total").await
        })
        .await,
        "the removal was not reported"
    );
    // Entries after it are read and stored as ever.
    xadd_posts(&redis, &env.stream, "later", 0..2).await;
    assert!(env.stored_exactly(4, WAIT).await);
    app.shutdown().await;
}
