//! A topic's relevance at work on stored posts: a re-tagging puts the posts the learned
//! relevance leaves out among the topic's filtered posts, a label given while a re-scoring
//! chunk is worked wins over the chunk, posts stored before a process loads an adopted model
//! are re-scored once it has, a threshold set to the one a topic has begins no re-scoring, and
//! a chunk reads on from its cursor.

use super::*;

fn leopard(i: usize) -> String {
    format!("a leopard cub seen in the rainforest by the river, photo {i}")
}

/// Whether the topic has adopted a model and its re-scoring filtered every post about the
/// animal, within the wait.
async fn cats_filtered(pg: &tokio_postgres::Client, topic: i64) -> bool {
    wait_until(WAIT, || async {
        pg.scalar::<bool>(
            "SELECT r.model_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM posts p \
                 WHERE p.id LIKE 'cat-%' AND p.topics @> ARRAY[$1::int8]) \
             FROM topic_relevance r WHERE r.topic_id = $1",
            &[&topic],
        )
        .await
    })
    .await
}

/// A Pulse tuned by `tweak` with the topic "Jaguar cars" (`jaguar`) whose adopted model filters
/// the animal: 20 posts about the car, 20 about the animal and `others` (id and text) stored,
/// five of each class labelled, the model adopted and the stored posts re-scored under it.
async fn filtering_jaguar(
    tweak: impl FnOnce(&mut pulse::config::Settings),
    others: &[(&str, &str)],
) -> (TestApp, i64) {
    let (app, topic) = jaguar_app(|s| {
        s.topics.relevance_every_ms = 100;
        tweak(s);
    })
    .await;
    let pg = app.env.pg().await;
    let mut events: Vec<String> = (0..20)
        .map(|i| post_json(&format!("car-{i}"), &car(i)))
        .collect();
    events.extend((0..20).map(|i| post_json(&format!("cat-{i}"), &cat(i))));
    events.extend(others.iter().map(|(id, text)| post_json(id, text)));
    app.send_events(&events).await;
    assert!(app.wait_for_posts(events.len() as i64, WAIT).await);
    label_both_classes(&app, topic, ("car", "cat"), 1..6).await;
    assert!(
        trained(&pg, topic).await,
        "the topic is trained on its labels"
    );
    assert!(
        cats_filtered(&pg, topic).await,
        "a model is adopted and applied"
    );
    for i in 0..20 {
        let (car, cat) = (format!("car-{i}"), format!("cat-{i}"));
        assert_eq!(ids(&post(&app, &car).await["topics"]), vec![topic]);
        assert_eq!(ids(&post(&app, &cat).await["filtered_topics"]), vec![topic]);
    }
    (app, topic)
}

/// Holds the `work` (`train` or `rescore`) of `topic` on a connection of its own, as a process
/// doing it does, so the app's learner leaves it alone (labels given meanwhile leave the
/// adopted model as it is); the connection holding it.
async fn hold_relevance_work(app: &TestApp, work: &str, topic: i64) -> tokio_postgres::Client {
    let holder = app.env.pg().await;
    let lock = format!(
        "SELECT pg_advisory_lock(hashtextextended('pulse.relevance.{work}:' || $1::int8, 0))"
    );
    holder.execute(&lock, &[&topic]).await.unwrap();
    holder
}

/// Edits `topic`'s query to `query` and re-tags the stored posts of the last week; the job,
/// done.
async fn retag(app: &TestApp, pg: &tokio_postgres::Client, topic: i64, query: &str) -> Value {
    let path = format!("/api/v1/topics/{topic}");
    let (status, edited) = app.patch(&path, &json!({ "query": query })).await;
    assert_eq!(status, 200, "{edited}");
    let (status, job) = app
        .post(&format!("{path}/retags"), &json!({"days": 7}))
        .await;
    assert_eq!(status, 202, "{job}");
    assert!(retags_done(pg).await);
    let job = app.get_ok(&format!("{path}/retags/{}", job["id"])).await;
    assert_eq!(job["status"], "done", "{job}");
    job
}

/// Where post `id` stands for the topics: those it counts in, and those that filter it.
async fn place(app: &TestApp, id: &str) -> (Vec<i64>, Vec<i64>) {
    let p = post(app, id).await;
    (ids(&p["topics"]), ids(&p["filtered_topics"]))
}

/// A re-tagging matched the topic's new query alone: the posts newly matched that its adopted
/// model filters were put in the topic and counted in its figures, and a filtered post the new
/// query no longer matched stayed among its filtered posts for good.
#[actix_rt::test]
async fn a_retagging_puts_the_posts_the_topics_relevance_leaves_out_among_its_filtered_posts() {
    let leopards: Vec<(String, String)> = (0..5)
        .map(|i| (format!("leopard-{i}"), leopard(i)))
        .collect();
    let others: Vec<(&str, &str)> = leopards
        .iter()
        .map(|(id, text)| (id.as_str(), text.as_str()))
        .collect();
    let (app, topic) = filtering_jaguar(|_| {}, &others).await;
    let pg = app.env.pg().await;
    let _training = hold_relevance_work(&app, "train", topic).await;
    assert_eq!(counted(&pg, topic).await, 20);
    let none = Vec::<i64>::new();

    // The query widened to the leopards: matched, and filtered as the model says.
    let job = retag(&app, &pg, topic, "jaguar OR leopard").await;
    assert_eq!(job["matched"], 45, "{job}");
    assert_eq!(job["added"], 0, "{job}");
    for (id, _) in &leopards {
        assert_eq!(place(&app, id).await, (none.clone(), vec![topic]), "{id}");
    }
    assert_eq!(counted(&pg, topic).await, 20);
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);

    // A reviewer says one of them is about the topic.
    relevance_label(&app, topic, "leopard-0", "related").await;
    assert_eq!(place(&app, "leopard-0").await, (vec![topic], none.clone()));
    assert_eq!(counted(&pg, topic).await, 21);

    // A query that no longer matches them: they leave the topic and its filtered posts alike.
    retag(&app, &pg, topic, "jaguar").await;
    for (id, _) in &leopards {
        assert_eq!(place(&app, id).await, (none.clone(), none.clone()), "{id}");
    }
    assert_eq!(counted(&pg, topic).await, 20);
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);

    // Matched again: the label decides its post, the model the others.
    retag(&app, &pg, topic, "jaguar OR leopard").await;
    assert_eq!(place(&app, "leopard-0").await, (vec![topic], none.clone()));
    for (id, _) in &leopards[1..] {
        assert_eq!(place(&app, id).await, (none.clone(), vec![topic]), "{id}");
    }
    assert_eq!(counted(&pg, topic).await, 21);
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);
    app.shutdown().await;
}

/// A re-scoring chunk read its posts and moved them later: a post labelled `related` in
/// between, which the label left where it was (it counted), was filtered by the chunk all the
/// same, against its label, and stayed so.
#[actix_rt::test]
async fn a_label_given_while_a_rescoring_chunk_is_worked_wins_over_the_chunk() {
    let (app, topic) = filtering_jaguar(|_| {}, &[("unsure", "jaguar engine")]).await;
    let pg = app.env.pg().await;
    // This connection holds the topic's re-scoring, as a process working it does: the app's
    // learner leaves it alone.
    let mut scorer = hold_relevance_work(&app, "rescore", topic).await;
    let (status, body) = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/topics/{topic}/relevance"),
            Some(&json!({"threshold": 0.99})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A chunk under the new threshold, and a post it filters out of the topic.
    let tx = scorer.transaction().await.unwrap();
    let chunk = pulse::db::relevance::claim_rescore(&tx, 1_000, Duration::ZERO)
        .await
        .unwrap()
        .expect("the topic is to be re-scored");
    assert_eq!(chunk.topic_id, topic);
    let (model, threshold, bias, weights) = pulse::db::relevance::adopted_of(&tx, topic)
        .await
        .unwrap()
        .expect("a model is adopted");
    let filter = Filter::from_stored(model, threshold, bias, &weights).expect("it reads back");
    let decided = chunk.posts.iter().find(|p| {
        p.kept
            && !counts(None, Some(&filter), || {
                Features::of(&Post {
                    text: &p.text,
                    author: Some(&p.author),
                    lang: p.lang.as_deref(),
                    matched: true,
                })
            })
    });
    let id = decided
        .expect("the chunk filters a post the topic counts")
        .id
        .clone();

    // The reviewer's label, then the chunk's move as it decided.
    relevance_label(&app, topic, &id, "related").await;
    let high_churn = app.env.settings().metrics.high_churn_threshold;
    pulse::db::relevance::move_posts(&tx, topic, chunk.version, &[id.as_str()], &[], high_churn)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(place(&app, &id).await, (vec![topic], Vec::new()), "{id}");
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);
    app.shutdown().await;
}

/// A re-scoring read the stored posts once, from the newest at its start: the posts a process
/// stored after it began with the matcher it held before loading the adopted model were newer
/// than where it began, and kept for good what that matcher gave them.
#[actix_rt::test]
async fn posts_stored_before_a_process_loads_an_adopted_model_are_rescored_once_it_has() {
    // A settle long enough that this test holds the re-scoring before the last pass however
    // slow the machine.
    let (app, topic) = filtering_jaguar(|s| s.topics.relevance_settle_ms = 20_000, &[]).await;
    let pg = app.env.pg().await;
    // The first pass is over; the last waits for the processes to load the model
    // (`topics.relevance_settle_ms` past `topics.refresh_ms`), and for this connection, which
    // holds the re-scoring while the posts below are stored.
    let scorer = hold_relevance_work(&app, "rescore", topic).await;

    // This process matches as one that has not loaded the model yet: with the query alone.
    let live = app.pipeline().topics();
    assert!(wait_until(WAIT, || async { !live.with_filters().1.is_empty() }).await);
    let query = pulse::topics::parse("jaguar").unwrap();
    live.replace(live.revision(), TopicSet::of(topic, 1, &query));
    let late: Vec<String> = (0..5).map(|i| format!("late-cat-{i}")).collect();
    let events: Vec<String> = (0..5).map(|i| post_json(&late[i], &cat(100 + i))).collect();
    app.send_events(&events).await;
    assert!(app.wait_for_posts(45, WAIT).await);
    for id in &late {
        assert_eq!(place(&app, id).await, (vec![topic], Vec::new()), "{id}");
    }

    // The process loads the model, as its watcher does; the re-scoring goes on.
    live.replace(0, TopicSet::default());
    assert!(wait_until(WAIT, || async { !live.with_filters().1.is_empty() }).await);
    scorer
        .execute(
            "SELECT pg_advisory_unlock(hashtextextended('pulse.relevance.rescore:' || $1::int8, 0))",
            &[&topic],
        )
        .await
        .unwrap();
    let rescored = wait_until(WAIT, || async {
        pg.scalar::<i64>(
            "SELECT count(*) FROM posts WHERE id LIKE 'late-cat-%' \
             AND filtered_topics @> ARRAY[$1::int8]",
            &[&topic],
        )
        .await
            == 5
    })
    .await;
    assert!(rescored, "the posts stored meanwhile are re-scored");
    assert_eq!(counted(&pg, topic).await, 20);
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);
    app.shutdown().await;
}

/// Where `topic`'s re-scoring stands: whether it is done, when it began, and the topics'
/// revision (which a change of its threshold moves).
async fn rescoring(
    pg: &tokio_postgres::Client,
    topic: i64,
) -> (bool, chrono::DateTime<chrono::Utc>, i64) {
    let r = pg
        .query_one(
            "SELECT r.rescore_done, r.rescore_since, c.revision FROM topic_relevance r \
             CROSS JOIN topic_changes c WHERE r.topic_id = $1",
            &[&topic],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// Every `PUT` of a topic's threshold began the re-scoring of its stored posts over again,
/// the threshold it already had included: an editor sending it again and again kept every
/// stored post of the topic being re-scored.
#[actix_rt::test]
async fn setting_the_threshold_a_topic_has_leaves_its_finished_rescoring_alone() {
    let (app, topic) = filtering_jaguar(|s| s.topics.relevance_settle_ms = 0, &[]).await;
    let pg = app.env.pg().await;
    let path = format!("/api/v1/topics/{topic}/relevance");
    let put = |threshold: f64| {
        let (app, path) = (&app, &path);
        async move {
            let (status, body) = app
                .request(
                    reqwest::Method::PUT,
                    path,
                    Some(&json!({ "threshold": threshold })),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    // A new threshold: a re-scoring, to its end.
    put(0.7).await;
    assert!(
        wait_until(WAIT, || async { rescoring(&pg, topic).await.0 }).await,
        "the re-scoring under the new threshold ends"
    );
    let finished = rescoring(&pg, topic).await;

    // The same again, twice: nothing begins, nothing is reloaded.
    for _ in 0..2 {
        let body = put(0.7).await;
        assert!(
            (body["threshold"].as_f64().unwrap() - 0.7).abs() < 1e-6,
            "{body}"
        );
        assert_eq!(rescoring(&pg, topic).await, finished);
    }
    app.shutdown().await;
}

/// A re-scoring chunk's posts are read down the index of posts by date from the chunk's
/// cursor, whatever the plan: compared beside "or no cursor", a plan made for any cursor (as a
/// cached statement's is) read every post from the newest on, again at each chunk.
#[actix_rt::test]
async fn a_rescoring_chunk_reads_on_from_its_cursor_under_any_plan() {
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    pg.batch_execute(
        "INSERT INTO posts (id, platform, author_id, author_followers, text, created_at, \
             sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model, stream_id, \
             topics) \
         SELECT 'p' || g, 'x', 'a', 0, 'jaguar ' || g, now() - g * interval '1 second', \
                'neutral', 0, '{}', 0, 0, 'm', 's', ARRAY[1::int8] \
         FROM generate_series(1, 20000) g; \
         ANALYZE posts;",
    )
    .await
    .unwrap();
    let prepare = format!(
        "SET plan_cache_mode = force_generic_plan; \
         PREPARE chunk (int8, timestamptz, text, int8, int4, timestamptz) AS {}",
        pulse::db::relevance::RESCORE_POSTS
    );
    pg.batch_execute(&prepare).await.unwrap();
    for cursor in ["now() - interval '5000 seconds', 'p5000'", "NULL, NULL"] {
        let explain = format!("EXPLAIN EXECUTE chunk (1, {cursor}, 500, 4096, NULL)");
        let plan: Vec<String> = pg
            .simple_query(&explain)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect();
        assert!(
            plan.iter()
                .any(|l| l.contains("Index Cond") && l.contains("created_at")),
            "{cursor}: {plan:#?}"
        );
    }
}
