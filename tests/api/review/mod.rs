//! Reviewers' labels on the real pipeline: a relevance label moves its post out of (or back
//! into) the topic's figures at once, the latest label wins and both stay on record, an undo
//! puts the post back where the labels left standing say; a topic's learned relevance, once it
//! beats the query alone out of fold, filters the stored posts and new ones at analysis, while
//! the topic's rollups stay equal to a recount; a re-tagging and a re-scoring put posts where
//! the model and the posts' own labels say; a burst of labels costs a topic a training round
//! a gap, not one each; bad labels get clear answers. The queue is in [`queue`].

use crate::common;
use std::time::Duration;

use common::*;
use pulse::auth::Role;
use serde_json::{json, Value};

use pulse::topics::relevance::{counts, Features, Filter, Post};
use pulse::topics::TopicSet;

use super::deletions::delete_post;
use super::topics::{matcher_holds, retags_done, topic_recount, topic_rollups};

mod queue;
mod rescoring;

const WAIT: Duration = Duration::from_secs(60);
const SECRET: &str = "4f1c9e2a7b3d5f6a8c0e1b2d3f4a5b6c7d8e9f0a1b2c3d4e";

/// A Pulse with authentication on, where a caller may send `burst` labels at once and
/// `per_sec` after.
async fn review_app(burst: u32, per_sec: f64) -> TestApp {
    spawn_app_tuned(|s| {
        authenticated(s, SECRET);
        s.topics.label_burst = burst;
        s.topics.label_rate_per_sec = per_sec;
    })
    .await
}

fn car(i: usize) -> String {
    format!("the jaguar engine needs service at the dealer, part {i}")
}

fn cat(i: usize) -> String {
    format!("a jaguar cub seen in the rainforest by the river, photo {i}")
}

/// The posts the topic counts, by its rollups.
async fn counted(pg: &tokio_postgres::Client, topic: i64) -> i64 {
    pg.scalar(
        "SELECT COALESCE(sum(posts), 0)::int8 FROM metric_rollups \
         WHERE dimension = 'topic' AND key = $1",
        &[&topic.to_string()],
    )
    .await
}

/// Relevance models trained so far, adopted or not.
async fn models(pg: &tokio_postgres::Client) -> i64 {
    pg.scalar("SELECT count(*) FROM relevance_models", &[])
        .await
}

async fn post(app: &TestApp, id: &str) -> Value {
    app.get_ok(&format!("/api/v1/posts/{id}")).await
}

fn ids(v: &Value) -> Vec<i64> {
    serde_json::from_value(v.clone()).unwrap()
}

/// Undoes label `id` as `bearer` (none: the open server's caller); the status and body.
async fn undo(app: &TestApp, id: &Value, bearer: Option<&str>) -> (u16, Value) {
    let path = format!("/api/v1/labels/{id}");
    app.request(reqwest::Method::DELETE, &path, None, bearer)
        .await
}

async fn label(app: &TestApp, body: Value) -> (u16, Value) {
    app.post("/api/v1/labels", &body).await
}

/// Gives the label `body`, which must be created; the label as stored.
async fn created_label(app: &TestApp, body: Value) -> Value {
    let (status, given) = label(app, body).await;
    assert_eq!(status, 201, "{given}");
    given
}

/// A Pulse tuned by `tweak` with the topic "Jaguar cars" (`jaguar`) matched; the topic's id.
async fn jaguar_app(tweak: impl FnOnce(&mut pulse::config::Settings)) -> (TestApp, i64) {
    let app = spawn_app_tuned(tweak).await;
    let topic = app.create_topic("Jaguar cars", "jaguar").await;
    assert!(matcher_holds(&app, 1).await);
    (app, topic)
}

/// Labels post `id` `value` (`related` or `unrelated`) to `topic`; the label as stored.
async fn relevance_label(app: &TestApp, topic: i64, id: &str, value: &str) -> Value {
    let body = json!({"post_id": id, "topic_id": topic, "kind": "relevance", "value": value});
    created_label(app, body).await
}

/// Labels `{related}-{i}` related and then `{unrelated}-{i}` unrelated to `topic`, for each `i`
/// of `range` in turn.
async fn label_both_classes(
    app: &TestApp,
    topic: i64,
    (related, unrelated): (&str, &str),
    range: std::ops::Range<usize>,
) {
    for i in range {
        relevance_label(app, topic, &format!("{related}-{i}"), "related").await;
        relevance_label(app, topic, &format!("{unrelated}-{i}"), "unrelated").await;
    }
}

/// Sends two posts about the car, `ids`, waits for them, and gives each every label of
/// `labels` (a kind and a value).
async fn labelled_posts(app: &TestApp, ids: [&str; 2], labels: &[(&str, &str)]) {
    let events: Vec<String> = (1..)
        .zip(ids)
        .map(|(part, id)| post_json(id, &car(part)))
        .collect();
    app.send_events(&events).await;
    assert!(app.wait_for_posts(2, WAIT).await);
    for post in ids {
        for (kind, value) in labels {
            created_label(app, json!({"post_id": post, "kind": kind, "value": value})).await;
        }
    }
}

/// Sends `cars` posts about the car (`car-0`...) and `cats` about the animal (`cat-0`...) and
/// waits for them all.
async fn cars_and_cats(app: &TestApp, cars: usize, cats: usize) {
    let mut events: Vec<String> = (0..cars)
        .map(|i| post_json(&format!("car-{i}"), &car(i)))
        .collect();
    events.extend((0..cats).map(|i| post_json(&format!("cat-{i}"), &cat(i))));
    app.send_events(&events).await;
    assert!(app.wait_for_posts((cars + cats) as i64, WAIT).await);
}

/// Whether the topic's training has caught up with its labels, within the wait.
async fn trained(pg: &tokio_postgres::Client, topic: i64) -> bool {
    wait_until(WAIT, || async {
        pg.scalar::<bool>(
            "SELECT trained_changes = changes FROM topic_relevance WHERE topic_id = $1",
            &[&topic],
        )
        .await
    })
    .await
}

#[actix_rt::test]
async fn labels_move_posts_at_once_and_a_learned_relevance_filters_old_and_new_posts() {
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    let topic = app.create_topic("Jaguar cars", "jaguar").await;
    assert!(matcher_holds(&app, 1).await);
    let mut events: Vec<String> = (0..20)
        .map(|i| post_json(&format!("car-{i}"), &car(i)))
        .collect();
    events.extend((0..20).map(|i| post_json(&format!("cat-{i}"), &cat(i))));
    events.push(post_json("other", "nothing about the topic here"));
    app.send_events(&events).await;
    assert!(app.wait_for_posts(41, WAIT).await);
    assert_eq!(counted(&pg, topic).await, 40);
    // Engagements on posts that will be filtered and restored: their counts move with them.
    let likes: Vec<String> = ["cat-0", "cat-7", "car-3"]
        .iter()
        .enumerate()
        .map(|(i, post)| {
            super::deletions::engagement(
                &format!("like-{i}"),
                post,
                "like",
                3 + i as u32,
                chrono::Utc::now(),
            )
            .to_string()
        })
        .collect();
    app.send_events(&likes).await;
    assert!(
        wait_until(WAIT, || async {
            pg.scalar::<i64>("SELECT count(*) FROM engagements", &[])
                .await
                == 3
        })
        .await
    );
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);

    // Not about the topic: out of its figures at once, kept and listed as filtered.
    let first = relevance_label(&app, topic, "cat-0", "unrelated").await;
    assert_eq!(first["reviewer"], "anonymous (open server)", "{first}");
    assert_eq!(counted(&pg, topic).await, 39);
    let p = post(&app, "cat-0").await;
    assert_eq!(ids(&p["topics"]), Vec::<i64>::new());
    assert_eq!(ids(&p["filtered_topics"]), vec![topic]);

    // A contradicting label: the latest wins, both are kept.
    let second = relevance_label(&app, topic, "cat-0", "related").await;
    assert_eq!(counted(&pg, topic).await, 40);
    assert_eq!(ids(&post(&app, "cat-0").await["topics"]), vec![topic]);
    let listed = app.get_ok("/api/v1/labels?post_id=cat-0").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");

    // Undoing the latest: the earlier label counts again.
    let (status, undone) = undo(&app, &second["id"], None).await;
    assert_eq!(status, 200, "{undone}");
    assert!(undone["undone_at"].is_string(), "{undone}");
    assert_eq!(counted(&pg, topic).await, 39);
    let (status, again) = undo(&app, &second["id"], None).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (400, Some("invalid_label"))
    );
    let listed = app.get_ok("/api/v1/labels?post_id=cat-0").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let all = app
        .get_ok("/api/v1/labels?post_id=cat-0&include_undone=true")
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");

    // Bad labels: clear answers, nothing stored.
    let invalid = [
        json!({"post_id": "car-1", "topic_id": 999_999, "kind": "relevance", "value": "related"}),
        json!({"post_id": "car-1", "kind": "relevance", "value": "related"}),
        json!({"post_id": "car-1", "topic_id": topic, "kind": "sentiment", "value": "negative"}),
        json!({"post_id": "car-1", "kind": "sentiment", "value": "angry"}),
        json!({"post_id": "car-1", "kind": "tag", "value": "price\u{202e}gnirts"}),
        json!({"post_id": "car-1", "kind": "note", "value": "x".repeat(2_001)}),
        json!({"post_id": "other", "topic_id": topic, "kind": "relevance", "value": "related"}),
    ]
    .map(|body| (body, 400, "invalid_label"));
    let others = [
        (
            json!({"post_id": "nope", "topic_id": topic, "kind": "relevance", "value": "related"}),
            404,
            "not_found",
        ),
        (
            json!({"post_id": "car-1", "kind": "mood", "value": "ok"}),
            400,
            "invalid_json",
        ),
    ];
    for (body, status, code) in invalid.into_iter().chain(others) {
        let (got, answer) = label(&app, body.clone()).await;
        assert_error(got, &answer, status, code, format!("{body}: {answer}"));
    }
    let stored: i64 = pg.scalar("SELECT count(*) FROM post_labels", &[]).await;
    assert_eq!(stored, 2);
    for (kind, value) in [
        ("sentiment", "negative"),
        ("spam", "bot"),
        ("tag", "dealer"),
        ("note", "check the recall"),
    ] {
        created_label(
            &app,
            json!({"post_id": "car-1", "kind": kind, "value": value}),
        )
        .await;
    }
    let on_post = app.get_ok("/api/v1/labels?post_id=car-1&kind=tag").await;
    assert_eq!(on_post["items"][0]["value"], "dealer");

    // Five of each class: a model is trained, beats the query alone out of fold, is adopted,
    // and the stored posts are re-scored under it.
    label_both_classes(&app, topic, ("car", "cat"), 1..6).await;
    let relevance = app
        .wait_for(&format!("/api/v1/topics/{topic}/relevance"), WAIT, |b| {
            b["model_id"].is_i64() && b["filtered_posts"] == 20
        })
        .await;
    let adopted = &relevance["models"][0];
    assert_eq!(adopted["adopted"], true, "{relevance}");
    assert!(
        adopted["accuracy"].as_f64() > adopted["incumbent"].as_f64(),
        "{relevance}"
    );
    assert_eq!(relevance["kept_posts"], 20, "{relevance}");
    for i in 0..20 {
        assert_eq!(
            ids(&post(&app, &format!("car-{i}")).await["topics"]),
            vec![topic]
        );
        assert_eq!(
            ids(&post(&app, &format!("cat-{i}")).await["filtered_topics"]),
            vec![topic]
        );
    }
    assert_eq!(counted(&pg, topic).await, 20);
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);
    // Listed apart: the topic's posts, and the posts it filtered.
    let listed = |q: String| {
        let app = &app;
        async move {
            let page = app.get_ok(&format!("/api/v1/posts?{q}&limit=100")).await;
            let mut ids: Vec<String> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut cats: Vec<String> = (0..20).map(|i| format!("cat-{i}")).collect();
    cats.sort();
    assert_eq!(listed(format!("filtered_topic={topic}")).await, cats);
    assert_eq!(listed(format!("topic={topic}")).await.len(), 20);
    assert!(listed(format!("topic={topic}"))
        .await
        .iter()
        .all(|id| id.starts_with("car-")));

    // New posts are scored at analysis, once this process holds the model.
    assert!(
        wait_until(WAIT, || async {
            !app.pipeline().topics().with_filters().1.is_empty()
        })
        .await
    );
    app.send_events(&[
        post_json("car-new", &car(99)),
        post_json("cat-new", &cat(99)),
    ])
    .await;
    assert!(app.wait_for_posts(43, WAIT).await);
    assert_eq!(ids(&post(&app, "car-new").await["topics"]), vec![topic]);
    let new_cat = post(&app, "cat-new").await;
    assert_eq!(ids(&new_cat["topics"]), Vec::<i64>::new(), "{new_cat}");
    assert_eq!(ids(&new_cat["filtered_topics"]), vec![topic]);

    // A reviewer brings a filtered post back.
    relevance_label(&app, topic, "cat-new", "related").await;
    assert_eq!(ids(&post(&app, "cat-new").await["topics"]), vec![topic]);
    assert_eq!(topic_rollups(&pg).await, topic_recount(&pg).await);

    // An undone label is a change of the topic's labels: it is trained again.
    assert!(wait_until(WAIT, || async { models(&pg).await >= 2 }).await);
    let before = models(&pg).await;
    let car1 = app
        .get_ok(&format!("/api/v1/labels?post_id=car-1&topic_id={topic}"))
        .await;
    let (status, _) = undo(&app, &car1["items"][0]["id"], None).await;
    assert_eq!(status, 200);
    assert!(wait_until(WAIT, || async { models(&pg).await > before }).await);
    app.shutdown().await;
}

struct Reviewer {
    token: String,
}

async fn reviewer(app: &TestApp, name: &str) -> Reviewer {
    let key = app.create_key(Role::Editor, name).await;
    let (status, body) = app
        .post("/api/v1/auth/token", &json!({ "api_key": key.key }))
        .await;
    assert_eq!(status, 200, "{body}");
    Reviewer {
        token: body["access_token"].as_str().unwrap().to_string(),
    }
}

/// A deleted post's labels stayed listed, notes quoting it included.
#[actix_rt::test]
async fn a_deleted_posts_labels_and_notes_are_no_longer_listed() {
    let app = spawn_app().await;
    let labels = [
        ("sentiment", "negative"),
        ("note", "they wrote: the engine died"),
    ];
    labelled_posts(&app, ["said-then-deleted", "kept"], &labels).await;
    delete_post(&app, "said-then-deleted").await;

    let listed = app.get_ok("/api/v1/labels?include_undone=true").await;
    let posts = strings(&listed["items"], "post_id");
    assert_eq!(posts, ["kept", "kept"], "{listed}");
    let of_deleted = app.get_ok("/api/v1/labels?post_id=said-then-deleted").await;
    assert_eq!(of_deleted["items"], json!([]), "{of_deleted}");
    app.shutdown().await;
}

/// Retention removes posts' rows after `store.retention_days`, deleted ones included: a deleted
/// post's labels, unlisted while its row said it was deleted, were listed again once the row
/// was gone, notes quoting it included.
#[actix_rt::test]
async fn a_deleted_posts_labels_stay_unlisted_once_retention_removes_the_post() {
    let app = spawn_app().await;
    let note = ("note", "they wrote: the engine died");
    labelled_posts(&app, ["quoted-then-deleted", "expired"], &[note]).await;
    delete_post(&app, "quoted-then-deleted").await;

    // Both posts reached Pulse before the retention limit: their rows go.
    app.env
        .sweep_arrived_long_ago("id IN ('quoted-then-deleted', 'expired')")
        .await;
    let stored: i64 = app.env.value_of("SELECT count(*) FROM posts").await;
    assert_eq!(stored, 0);

    // The expired post's label stays on record; the deleted one's is listed nowhere.
    let listed = app.get_ok("/api/v1/labels?include_undone=true").await;
    let posts = strings(&listed["items"], "post_id");
    assert_eq!(posts, ["expired"], "{listed}");
    let of_deleted = app
        .get_ok("/api/v1/labels?post_id=quoted-then-deleted&include_undone=true")
        .await;
    assert_eq!(of_deleted["items"], json!([]), "{of_deleted}");
    app.shutdown().await;
}

/// A topic's page counted the relevance labels of deleted posts, which training leaves out: it
/// said a model had the labels it needs while training found too few.
#[actix_rt::test]
async fn a_deleted_posts_relevance_label_counts_neither_in_training_nor_on_the_topics_page() {
    let (app, topic) = jaguar_app(|s| s.topics.relevance_every_ms = 100).await;
    let pg = app.env.pg().await;
    cars_and_cats(&app, 5, 5).await;
    // Five related and four unrelated: too few for a model yet.
    for i in 0..5 {
        relevance_label(&app, topic, &format!("car-{i}"), "related").await;
    }
    for i in 0..4 {
        relevance_label(&app, topic, &format!("cat-{i}"), "unrelated").await;
    }
    delete_post(&app, "car-0").await;
    // Five of each, one of them on the deleted post.
    relevance_label(&app, topic, "cat-4", "unrelated").await;
    assert!(
        trained(&pg, topic).await,
        "the topic is trained on its last label"
    );
    let relevance = app
        .get_ok(&format!("/api/v1/topics/{topic}/relevance"))
        .await;
    assert_eq!(relevance["models"], json!([]), "{relevance}");
    assert_eq!(relevance["model_id"], Value::Null, "{relevance}");
    assert_eq!(relevance["related"], 4, "{relevance}");
    assert_eq!(relevance["unrelated"], 5, "{relevance}");
    let waiting = relevance["waiting_for"].as_str().unwrap_or_default();
    assert!(waiting.contains("4 related and 5 unrelated"), "{relevance}");
    app.shutdown().await;
}

#[actix_rt::test]
async fn one_reviewer_labelling_and_undoing_over_and_over_does_not_lock_others_out_of_a_post() {
    let app = review_app(1_000, 1_000.0).await;
    let mallory = reviewer(&app, "mallory").await;
    let erin = reviewer(&app, "erin").await;
    app.send_events(&[post_json("fought-over", &car(0))]).await;
    assert!(app.wait_for_posts(1, WAIT).await);
    let body = json!({"post_id": "fought-over", "kind": "sentiment", "value": "negative"});
    let give = |who: &Reviewer| {
        let token = who.token.clone();
        let body = body.clone();
        let app = &app;
        async move {
            app.request(
                reqwest::Method::POST,
                "/api/v1/labels",
                Some(&body),
                Some(&token),
            )
            .await
        }
    };
    let mut refused = None;
    for _ in 0..25 {
        let (status, given) = give(&mallory).await;
        if status != 201 {
            refused = Some((status, given));
            break;
        }
        let (status, _) = undo(&app, &given["id"], Some(&mallory.token)).await;
        assert_eq!(status, 200);
    }
    let (status, refusal) = refused.expect("labels and undos went on without end");
    assert_eq!(status, 409, "{refusal}");
    assert_eq!(refusal["error"]["code"], "limit_reached", "{refusal}");
    let (status, by_erin) = give(&erin).await;
    assert_eq!(
        status, 201,
        "another reviewer still labels the post: {by_erin}"
    );
    app.shutdown().await;
}

/// A topic's training ran between two statements of a transaction on the pipeline's pool: once
/// its labelled posts took longer to train on than `database.idle_transaction_timeout_ms`,
/// PostgreSQL ended the session, the training was lost, and the topic, claimed first again
/// every round, was never trained again.
#[actix_rt::test]
async fn a_training_that_outlasts_the_idle_transaction_timeout_is_still_recorded() {
    let (app, topic) = jaguar_app(|s| {
        s.database.idle_transaction_timeout_ms = 500;
        s.topics.relevance_every_ms = 200;
        s.topics.label_burst = 1_000;
    })
    .await;
    // Posts near the largest a post may be, of words no other post has: as many features as
    // the model reads of a post (`TEXT_FEATURES`), which a training passes over forty times in
    // each fold.
    let long = |class: char, i: usize, gist: &str| {
        let words: Vec<String> = (0..2_000).map(|j| format!("{class}{i}q{j}")).collect();
        format!("jaguar {gist} {}", words.join(" "))
    };
    let mut events = Vec::new();
    for i in 0..80 {
        events.push(post_json(
            &format!("long-car-{i}"),
            &long('a', i, "engine dealer service"),
        ));
        events.push(post_json(
            &format!("long-cat-{i}"),
            &long('b', i, "rainforest river cub"),
        ));
    }
    app.send_events(&events).await;
    assert!(app.wait_for_posts(160, WAIT).await);
    label_both_classes(&app, topic, ("long-car", "long-cat"), 0..80).await;
    // The newest model was trained on every label.
    let relevance = app
        .wait_for(&format!("/api/v1/topics/{topic}/relevance"), WAIT, |b| {
            b["models"][0]["labels"] == 160
        })
        .await;
    assert_eq!(relevance["models"][0]["related"], 80, "{relevance}");
    app.shutdown().await;
}

/// A topic's training read every labelled post it had: its time and memory grew with the
/// topic's labels for as long as reviewers labelled.
#[actix_rt::test]
async fn a_topic_is_trained_on_its_newest_labelled_posts_only() {
    let (app, topic) = jaguar_app(|s| {
        s.topics.relevance_every_ms = 100;
        s.topics.relevance_training_labels = 12;
    })
    .await;
    cars_and_cats(&app, 6, 16).await;
    // Ten older labels, all unrelated; then the newest twelve, six of each class.
    let mut labels: Vec<(String, &str)> =
        (0..10).map(|i| (format!("cat-{i}"), "unrelated")).collect();
    for i in 0..6 {
        labels.push((format!("car-{i}"), "related"));
        labels.push((format!("cat-{}", 10 + i), "unrelated"));
    }
    let mut last = Value::Null;
    for (id, value) in labels {
        let body = relevance_label(&app, topic, &id, value).await;
        last = body["id"].clone();
    }
    let relevance = app
        .wait_for(&format!("/api/v1/topics/{topic}/relevance"), WAIT, |b| {
            b["models"][0]["through_label"] == last
        })
        .await;
    let newest = &relevance["models"][0];
    assert_eq!(newest["labels"], 12, "{relevance}");
    assert_eq!(newest["related"], 6, "{relevance}");
    // Every label still counts on the topic's page and keeps its post out.
    assert_eq!(relevance["related"], 6, "{relevance}");
    assert_eq!(relevance["unrelated"], 16, "{relevance}");
    assert_eq!(
        ids(&post(&app, "cat-0").await["filtered_topics"]),
        vec![topic]
    );
    app.shutdown().await;
}

/// Every training stored its model, adopted or not, weights and all, and none was ever
/// deleted: one caller giving labels one after another had a model stored for each.
#[actix_rt::test]
async fn a_flood_of_labels_keeps_a_bounded_number_of_models() {
    let (app, topic) = jaguar_app(|s| {
        s.topics.relevance_every_ms = 50;
        s.topics.relevance_train_gap_ms = 0;
    })
    .await;
    let pg = app.env.pg().await;
    cars_and_cats(&app, 20, 20).await;
    // Each label waits for the training it causes, so each is trained on by itself (no gap
    // between two trainings).
    for i in 0..20 {
        for (id, value) in [
            (format!("car-{i}"), "related"),
            (format!("cat-{i}"), "unrelated"),
        ] {
            relevance_label(&app, topic, &id, value).await;
            assert!(
                trained(&pg, topic).await,
                "the topic is trained on label {id}"
            );
        }
    }
    let trained: i64 = pg
        .scalar("SELECT COALESCE(max(id), 0) FROM relevance_models", &[])
        .await;
    let kept: i64 = pg
        .scalar(
            "SELECT count(*) FROM relevance_models WHERE topic_id = $1",
            &[&topic],
        )
        .await;
    assert!(trained > 21, "{trained} models trained");
    assert!(kept <= 21, "{kept} of {trained} models kept");
    let relevance = app
        .get_ok(&format!("/api/v1/topics/{topic}/relevance"))
        .await;
    assert_eq!(
        relevance["models"].as_array().unwrap().len(),
        20,
        "{relevance}"
    );
    assert_eq!(relevance["models"][0]["labels"], 40, "{relevance}");
    app.shutdown().await;
}

/// Each label given or undone began a training round of its topic of its own, each round
/// eleven trainings on up to thousands of labelled posts: a reviewer labelling a post a second
/// kept a core busy. A burst of labels now costs a round for its first, and one more, once
/// `topics.relevance_train_gap_ms` has passed, for all the others together.
#[actix_rt::test]
async fn a_burst_of_labels_is_trained_on_once_a_gap() {
    use pulse::actors::relevance::train_once;
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    let pool = pulse::db::pool(&env.database_url, 2).unwrap();
    let topic: i64 = pg
        .scalar(
            "INSERT INTO topics (name, query) VALUES ('Jaguar cars', 'jaguar') RETURNING id",
            &[],
        )
        .await;
    let change = || async {
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        pulse::db::relevance::count_change(&tx, topic)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    };
    let gap = Duration::from_secs(3_600);
    // Twenty changes, the learner looking for a topic to train after each.
    let mut rounds = 0;
    for _ in 0..20 {
        change().await;
        if train_once(&pool, 5_000, gap).await.unwrap() {
            rounds += 1;
        }
    }
    assert_eq!(rounds, 1, "rounds begun for twenty label changes");

    // The gap over: one round for the nineteen changes since, then none.
    pg.execute(
        "UPDATE topic_relevance SET trained_at = trained_at - interval '2 hours' \
         WHERE topic_id = $1",
        &[&topic],
    )
    .await
    .unwrap();
    assert!(train_once(&pool, 5_000, gap).await.unwrap());
    assert!(!train_once(&pool, 5_000, gap).await.unwrap());
    let caught_up: bool = pg
        .scalar(
            "SELECT changes = 20 AND trained_changes = 20 FROM topic_relevance \
             WHERE topic_id = $1",
            &[&topic],
        )
        .await;
    assert!(caught_up);
}
