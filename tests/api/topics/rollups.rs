//! Per-topic rollups against a recount written out independently of the database, through
//! additions, deletions, edits and re-tagging, and while a topic is deleted under the matcher.

use super::*;
use crate::deletions::{deletion, engagement, keyed, Keyed};

/// The rollups of the dimension `topic`.
pub(crate) async fn topic_rollups(pg: &tokio_postgres::Client) -> Keyed {
    crate::deletions::rollups(pg)
        .await
        .into_iter()
        .filter(|((dimension, _), _)| dimension == "topic")
        .collect()
}

/// The same, recounted from the posts that are not deleted (a post counts under each topic
/// in its `topics`, when a model understands its language) and their engagements that are
/// not held, written out here independently of the database's own definition.
pub(crate) async fn topic_recount(pg: &tokio_postgres::Client) -> Keyed {
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
pub(crate) async fn retags_done(pg: &tokio_postgres::Client) -> bool {
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
    let topics = [("Phone", "phone"), ("Battery", "battery OR screen")];
    let (app, [phone, battery]) = app_with_topics(topics).await;
    let (env, redis) = (&app.env, app.redis().await);
    let pg = env.pg().await;
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
async fn a_topic_deleted_while_posts_are_matched_loses_nothing() {
    let (app, [id]) = app_with_topics([("Phone", "phone")]).await;
    let (env, redis) = (&app.env, app.redis().await);
    let pg = env.pg().await;
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
