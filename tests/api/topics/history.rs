//! What a topic leaves in the database stays bounded: it keeps its newest versions, and a
//! deleted topic's rows go once nothing names it.

use super::*;
use pulse::config::Settings;

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
    let (app, [carried, bare]) = app_with_topics([("Phone", "phone"), ("Tablet", "tablet")]).await;
    let pg = app.env.pg().await;
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
