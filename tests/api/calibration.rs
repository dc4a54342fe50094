//! Sentiment calibrated to a deployment on the real pipeline and the real model: reviewers'
//! sentiment labels train an adaptation that is put in use only when it beats the shipped model
//! out of fold; new posts and `/analyze` then read the deployment's own words as its reviewers
//! do and name the calibration's version; choosing none brings the shipped model back; labels of
//! one sentiment train nothing; bad choices get clear answers.

use crate::common;
use std::time::Duration;

use common::*;
use pulse::analysis::Backend;
use pulse::config::AnalyzerSettings;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

/// A community's slang the shipped model never saw: "zorked" is bad, "flurbed" is good.
fn zorked(i: usize) -> String {
    format!("my package {i} got zorked by the courier today")
}

fn flurbed(i: usize) -> String {
    format!("my package {i} got flurbed by the courier today")
}

fn plain(i: usize) -> String {
    format!("my package {i} is with the courier today")
}

async fn label(app: &TestApp, post: &str, value: &str) {
    let (status, body) = app
        .post(
            "/api/v1/labels",
            &json!({"post_id": post, "kind": "sentiment", "value": value}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn put(app: &TestApp, body: Value) -> (u16, Value) {
    app.request(
        reqwest::Method::PUT,
        "/api/v1/calibration",
        Some(&body),
        None,
    )
    .await
}

/// The calibration state once every label change is trained on.
async fn settled(app: &TestApp) -> Value {
    app.wait_for("/api/v1/calibration", WAIT, |b| b["pending_changes"] == 0)
        .await
}

#[actix_rt::test]
async fn reviewers_labels_calibrate_sentiment_only_when_it_beats_the_shipped_model() {
    let app = spawn_app_tuned(|s| {
        s.analyzer.backend = Backend::Onnx;
        s.analyzer.bundles = vec![AnalyzerSettings::default_bundle()];
        s.analyzer.multilingual_bundles = Vec::new();
        s.analyzer.calibration_every_ms = 200;
        s.analyzer.calibration_train_gap_ms = 0;
    })
    .await;
    let pg = app.env.pg().await;

    let mut events = Vec::new();
    for i in 0..20 {
        events.push(post_json(&format!("z-{i}"), &zorked(i)));
        events.push(post_json(&format!("f-{i}"), &flurbed(i)));
        events.push(post_json(&format!("p-{i}"), &plain(i)));
    }
    app.send_events(&events).await;
    assert!(app.wait_for_posts(60, WAIT).await);
    let shipped: Value = app.get_ok("/api/v1/posts/z-0").await;
    let shipped_model = shipped["analysis"]["model"].as_str().unwrap().to_string();
    assert!(!shipped_model.contains("calibration"), "{shipped}");

    // Labels of one sentiment: a record of why, nothing in use.
    for i in 0..20 {
        label(&app, &format!("z-{i}"), "negative").await;
    }
    let state = settled(&app).await;
    assert_eq!(state["active_id"], Value::Null, "{state}");
    let newest = &state["calibrations"][0];
    assert_eq!(newest["better"], false, "{state}");
    assert!(
        newest["reason"].as_str().unwrap().contains("at least 30")
            || newest["reason"].as_str().unwrap().contains("one sentiment"),
        "{state}"
    );

    // Both words labelled, and posts the model already reads right: the adaptation beats it.
    for i in 0..20 {
        label(&app, &format!("f-{i}"), "positive").await;
        label(&app, &format!("p-{i}"), "neutral").await;
    }
    let state = settled(&app).await;
    let newest = &state["calibrations"][0];
    assert_eq!(newest["better"], true, "{state}");
    assert_eq!(newest["labels"], 60, "{state}");
    assert!(
        newest["macro_recall"].as_f64().unwrap() > newest["shipped"].as_f64().unwrap(),
        "{state}"
    );
    let id = newest["id"].as_i64().unwrap();
    assert_eq!(state["active_id"], id, "{state}");
    assert_eq!(state["updated_by"], "training", "{state}");
    let calibrated_model = format!("{shipped_model}+calibration-{id}");

    // New posts in the community's words read as its reviewers read them, naming the version;
    // /analyze too, once this process loaded it.
    let analysed = app
        .wait_for_post_body(
            "/api/v1/analyze",
            &json!({"texts": [zorked(100), flurbed(101)]}),
            WAIT,
            |b| b["analyses"][0]["model"] == calibrated_model.as_str(),
        )
        .await;
    assert_eq!(
        analysed["analyses"][0]["sentiment"]["label"], "negative",
        "{analysed}"
    );
    assert_eq!(
        analysed["analyses"][1]["sentiment"]["label"], "positive",
        "{analysed}"
    );
    app.send_events(&[
        post_json("z-new", &zorked(200)),
        post_json("f-new", &flurbed(201)),
        post_json("p-new", &plain(202)),
    ])
    .await;
    assert!(app.wait_for_posts(63, WAIT).await);
    for (post, sentiment) in [
        ("z-new", "negative"),
        ("f-new", "positive"),
        ("p-new", "neutral"),
    ] {
        let p = app.get_ok(&format!("/api/v1/posts/{post}")).await;
        assert_eq!(p["analysis"]["model"], calibrated_model.as_str(), "{p}");
        assert_eq!(p["analysis"]["sentiment"]["label"], sentiment, "{p}");
    }
    // Stored posts keep the analysis they were stored with.
    let old = app.get_ok("/api/v1/posts/z-1").await;
    assert_eq!(old["analysis"]["model"], shipped_model.as_str(), "{old}");

    // Bad choices: an unknown calibration, one that did not beat the model, a malformed body.
    let (status, body) = put(&app, json!({"active_id": 999_999})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_calibration", "{body}");
    let worse = state["calibrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["better"] == false)
        .expect("the one-sided training is on record")["id"]
        .clone();
    let (status, body) = put(&app, json!({"active_id": worse})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not beat"),
        "{body}"
    );
    let (status, body) = put(&app, json!({"active_id": "one"})).await;
    assert_eq!(status, 400, "{body}");

    // None: the shipped model again, for /analyze and new posts, and training no longer
    // replaces the choice.
    let (status, body) = put(&app, json!({"active_id": null})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active_id"], Value::Null);
    assert_eq!(body["automatic"], false);
    app.wait_for_post_body(
        "/api/v1/analyze",
        &json!({"texts": [zorked(300)]}),
        WAIT,
        |b| b["analyses"][0]["model"] == shipped_model.as_str(),
    )
    .await;
    app.send_events(&[post_json("z-after", &zorked(301))]).await;
    assert!(app.wait_for_posts(64, WAIT).await);
    let p = app.get_ok("/api/v1/posts/z-after").await;
    assert_eq!(p["analysis"]["model"], shipped_model.as_str(), "{p}");
    label(&app, "z-new", "negative").await;
    let state = settled(&app).await;
    assert_eq!(state["active_id"], Value::Null, "{state}");
    assert!(
        state["calibrations"][0]["id"].as_i64().unwrap() > id,
        "{state}"
    );

    // Back to the one that won, by hand.
    let (status, body) = put(&app, json!({"active_id": id, "automatic": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active_id"], id);
    let audited: i64 = pg
        .scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'calibration.update' \
             AND outcome = 'succeeded'",
            &[],
        )
        .await;
    assert_eq!(audited, 2);
}

/// The training lease was set once, for 2 minutes, and never extended: 2,000 labelled posts of
/// 20 KB outlasted it and another process started the same training. A lease held is extended;
/// one that lapsed is not, and another process takes it.
#[actix_rt::test]
async fn a_training_lease_is_extended_while_held_and_taken_over_once_lapsed() {
    use pulse::db::calibration::{claim_training, extend_training, LEASE_SECS};
    let app = spawn_app_tuned(|s| s.analyzer.calibration_every_ms = 0).await;
    let pg = app.env.pg().await;
    pg.execute(
        "UPDATE sentiment_calibration_state SET changes = trained_changes + 1",
        &[],
    )
    .await
    .unwrap();
    assert!(claim_training(&pg, Duration::ZERO).await.unwrap().is_some());
    let left = || async {
        pg.query_one(
            "SELECT extract(epoch FROM training_until - now())::float8 \
             FROM sentiment_calibration_state",
            &[],
        )
        .await
        .unwrap()
        .get::<_, f64>(0)
    };

    pg.execute(
        "UPDATE sentiment_calibration_state SET training_until = now() + interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    assert!(extend_training(&pg).await.unwrap());
    let extended = left().await;
    assert!(extended > LEASE_SECS - 30.0, "{extended} s left");
    assert!(claim_training(&pg, Duration::ZERO).await.unwrap().is_none());

    pg.execute(
        "UPDATE sentiment_calibration_state SET training_until = now() - interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    assert!(!extend_training(&pg).await.unwrap());
    assert!(left().await < 0.0);
    assert!(claim_training(&pg, Duration::ZERO).await.unwrap().is_some());
}

/// Every sentiment label given or undone was followed, within `analyzer.calibration_every_ms`,
/// by a training that read every labelled post again through the analyzer: a reviewer's (or a
/// script's) stream of labels kept the pool re-reading 2,000 posts. One training begins in a
/// gap, whether it recorded or failed; the changes meanwhile are trained on once it has passed.
#[actix_rt::test]
async fn a_calibration_training_begins_at_most_once_a_gap() {
    use pulse::db::calibration::{claim_training, release_training};
    let app = spawn_app_tuned(|s| s.analyzer.calibration_every_ms = 0).await;
    let pg = app.env.pg().await;
    let gap = Duration::from_secs(3_600);
    let change = || async {
        pg.execute(
            "UPDATE sentiment_calibration_state SET changes = changes + 1",
            &[],
        )
        .await
        .unwrap();
    };
    // Twenty changes, a process looking for a training after each; each training fails and
    // gives its lease back.
    let mut begun = 0;
    for _ in 0..20 {
        change().await;
        if claim_training(&pg, gap).await.unwrap().is_some() {
            begun += 1;
            release_training(&pg).await.unwrap();
        }
    }
    assert_eq!(begun, 1, "trainings begun for twenty label changes");

    // The gap over: one for every change since, then none until another gap.
    pg.execute(
        "UPDATE sentiment_calibration_state \
         SET training_started = training_started - interval '2 hours'",
        &[],
    )
    .await
    .unwrap();
    let (changes, _) = claim_training(&pg, gap)
        .await
        .unwrap()
        .expect("the gap passed");
    assert_eq!(changes, 20);
    release_training(&pg).await.unwrap();
    change().await;
    assert!(claim_training(&pg, gap).await.unwrap().is_none());
    assert!(claim_training(&pg, Duration::ZERO).await.unwrap().is_some());
}

/// Every training stored a calibration with its adapters and none was ever deleted, while each
/// sentiment label given or undone can be followed by a training. The newest are kept, as many
/// as are listed, and the one in use however old; one deleted can no longer be chosen.
#[actix_rt::test]
async fn trainings_keep_the_newest_calibrations_and_the_one_in_use() {
    use pulse::db::calibration::{record, Trained, KEPT_CALIBRATIONS};
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    let mut client = pool.get().await.unwrap();
    let trainings = KEPT_CALIBRATIONS + 5;
    let mut ids = Vec::new();
    for i in 0..trainings {
        // The first beats the shipped models and is put in use; the others do not.
        let trained = Trained {
            changes: i + 1,
            labels: 10,
            through_label: i,
            macro_recall: 0.5,
            shipped: 0.4,
            better: i == 0,
            reason: "trained",
            models: vec!["model".to_string()],
            adapters: b"[]".to_vec(),
        };
        let tx = client.transaction().await.unwrap();
        let (id, used) = record(&tx, &trained).await.unwrap().expect("recorded");
        tx.commit().await.unwrap();
        assert_eq!(used, i == 0);
        ids.push(id);
    }
    let kept: Vec<i64> = pg
        .column("SELECT id FROM sentiment_calibrations ORDER BY id", &[])
        .await;
    let newest = &ids[ids.len() - KEPT_CALIBRATIONS as usize..];
    assert_eq!(kept, [&ids[..1], newest].concat());
    let state = app.get_ok("/api/v1/calibration").await;
    assert_eq!(state["active_id"], ids[0], "{state}");
    let listed = state["calibrations"].as_array().unwrap();
    assert_eq!(listed.len() as i64, KEPT_CALIBRATIONS, "{state}");
    let (status, body) = put(&app, json!({"active_id": ids[1]})).await;
    assert_error(status, &body, 400, "invalid_calibration", "a deleted one");
    app.shutdown().await;
}
