//! The transformer backend with the real ONNX Runtime and the bundled model: known texts get
//! the expected labels, broken bundles are refused with a clear reason, the pipeline records
//! the model with every post and falls back to the lexicon under a backlog, and the analyze
//! endpoint answers synchronously.

use crate::common;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use pulse::analysis::transformer::{InferenceOptions, TransformerAnalyzer};
use pulse::analysis::{Analyzer, Backend};
use pulse::config::AnalyzerSettings;
use pulse::models::{Analysis, Emotion, SentimentLabel};
use serde_json::{json, Value};

/// The default bundle `scripts/models.sh` builds (`PULSE_MODEL_DIR`, exported by the test
/// command).
fn bundle() -> PathBuf {
    let dir = AnalyzerSettings::default_bundle();
    assert!(
        dir.join("model.onnx").is_file(),
        "no model bundle at {} and ORT_DYLIB_PATH={:?}: run the tests with `bash scripts/test.sh`, which builds the bundled model (scripts/models.sh)",
        dir.display(),
        std::env::var("ORT_DYLIB_PATH").ok()
    );
    dir
}

/// How the default bundle names itself in analyses: its manifest's name and `@`.
fn bundle_model_prefix() -> String {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(bundle().join("pulse-model.json")).expect("the bundle's manifest"),
    )
    .expect("the manifest is JSON");
    let name = manifest["name"]
        .as_str()
        .expect("the manifest names the model");
    assert!(name.starts_with("minilm-tweets"), "{name}");
    format!("{name}@")
}

fn options(bundles: Vec<PathBuf>) -> InferenceOptions {
    InferenceOptions {
        bundles,
        onnxruntime: None,
        intra_threads: 1,
        batch_size: 8,
        max_length: 0,
        memory_arena: false,
    }
}

/// Asserts the analysis of a known text has the sentiment `label`.
fn assert_sentiment(analysis: &Analysis, label: SentimentLabel) {
    assert_eq!(analysis.sentiment_label, label, "{analysis:?}");
}

/// Asserts the dominant emotion in the analysis of a known text is `emotion`.
fn assert_dominant(analysis: &Analysis, emotion: Emotion) {
    assert_eq!(analysis.emotions.dominant(), Some(emotion), "{analysis:?}");
}

#[test]
fn the_bundled_model_labels_known_texts() {
    let mut model = TransformerAnalyzer::load(&options(vec![bundle()])).expect("bundle loads");
    assert!(
        model.model().starts_with(&bundle_model_prefix()),
        "{}",
        model.model()
    );
    let texts = [
        "I absolutely love this phone, best purchase I've made all year!",
        "This is the worst customer service ever. I'm furious and disgusted.",
        "The store opens at 9am on Monday.",
        "you are a pathetic fucking idiot, shut up",
        "I'm cancelling my subscription and switching to another provider, this is awful",
        "Lost my dog today. I miss him so much, I can't stop crying.",
    ];
    let out = model.analyze_batch(&texts);
    assert_eq!(out.len(), texts.len());
    let thresholds = model.decision_thresholds();

    assert_sentiment(&out[0], SentimentLabel::Positive);
    assert!(out[0].sentiment_score.get() > 0.3);
    assert_dominant(&out[0], Emotion::Joy);

    assert_sentiment(&out[1], SentimentLabel::Negative);
    assert!(out[1].sentiment_score.get() < -0.3);
    assert_dominant(&out[1], Emotion::Anger);

    assert_sentiment(&out[2], SentimentLabel::Neutral);
    assert!(out[2].toxicity.get() < thresholds.offensive, "{:?}", out[2]);

    assert!(
        out[3].toxicity.get() >= thresholds.offensive,
        "{:?}",
        out[3]
    );
    assert!(out[3].toxicity.get() > out[0].toxicity.get() + 0.3);

    // Churn: explicit intent plus negativity is high; praise is low.
    assert!(out[4].churn_risk.get() >= 0.6, "{:?}", out[4]);
    assert!(out[0].churn_risk.get() < 0.1, "{:?}", out[0]);

    assert_dominant(&out[5], Emotion::Sadness);

    // Batching, sorting by length and padding do not change a text's label. Scores may move a
    // little: dynamic int8 quantization scales activations per batch.
    let alone = model.analyze_batch(&texts[1..2]);
    assert_eq!(alone[0].sentiment_label, out[1].sentiment_label);
    assert_eq!(alone[0].emotions.dominant(), out[1].emotions.dominant());
    let drift = (alone[0].sentiment_score.get() - out[1].sentiment_score.get())
        .abs()
        .max((alone[0].toxicity.get() - out[1].toxicity.get()).abs());
    assert!(drift < 0.05, "batch composition moved a score by {drift}");
}

/// A copy of the bundle with its manifest edited by `edit`.
fn bundle_with(name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let source = bundle();
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["model.onnx", "tokenizer.json"] {
        std::os::unix::fs::symlink(source.join(file), dir.join(file)).unwrap();
    }
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(source.join("pulse-model.json")).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(dir.join("pulse-model.json"), manifest.to_string()).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    let err = TransformerAnalyzer::load(&options(vec![dir.to_path_buf()]))
        .err()
        .expect("the bundle must be refused");
    std::fs::remove_dir_all(dir).ok();
    format!("{err:#}")
}

fn head_index(manifest: &Value, field: &str) -> usize {
    manifest["heads"]
        .as_array()
        .unwrap()
        .iter()
        .position(|h| h["field"] == field)
        .unwrap()
}

#[test]
fn a_bundle_with_wrong_labels_outputs_or_inputs_is_refused_with_the_reason() {
    // Two labels for a three-class output.
    let dir = bundle_with("wrong-labels", |m| {
        let i = head_index(m, "sentiment");
        m["heads"][i]["labels"] = json!(["negative", "positive"]);
        m["heads"][i]["logit_bias"] = Value::Null;
    });
    let err = load_error(&dir);
    assert!(
        err.contains("3 classes") && err.contains("2 labels"),
        "{err}"
    );

    // An output the graph does not have.
    let dir = bundle_with("wrong-output", |m| {
        let i = head_index(m, "emotion");
        m["heads"][i]["output"] = json!("emotions_v2");
    });
    let err = load_error(&dir);
    assert!(
        err.contains("`emotions_v2`") && err.contains("outputs are"),
        "{err}"
    );

    // An input the graph needs but the manifest does not name.
    let dir = bundle_with("missing-input", |m| {
        m["inputs"]["attention_mask"] = Value::Null;
    });
    let err = load_error(&dir);
    assert!(err.contains("attention_mask"), "{err}");

    // A sentiment head whose labels are not Pulse's.
    let dir = bundle_with("unknown-labels", |m| {
        let i = head_index(m, "sentiment");
        m["heads"][i]["labels"] = json!(["LABEL_0", "LABEL_1", "LABEL_2"]);
    });
    let err = load_error(&dir);
    assert!(err.contains("label_map"), "{err}");

    // A wrong library path names the path and the fix before anything is loaded.
    let err = pulse::analysis::runtime::check_library(Path::new("/nonexistent/libonnxruntime.so"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/libonnxruntime.so") && err.contains("scripts/models.sh"));
}

/// A post event added with an explicit id `ms-seq`, so its age on arrival is known.
async fn xadd_at(redis: &fred::clients::Client, stream: &str, id: &str, json: &str) {
    use fred::prelude::*;
    let _: String = redis
        .xadd(stream, false, None::<()>, id, vec![("event", json)])
        .await
        .expect("xadd");
}

#[actix_rt::test]
async fn the_pipeline_records_the_model_and_falls_back_to_the_lexicon_under_a_backlog() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    // A backlog: 40 posts added two minutes ago (their entry ids carry that time).
    let old_ms = chrono::Utc::now().timestamp_millis() - 120_000;
    for i in 0..40 {
        xadd_at(
            &redis,
            &env.stream,
            &format!("{old_ms}-{i}"),
            &post_json(&format!("old-{i}"), "I love the new phone, great camera"),
        )
        .await;
    }
    let app = env
        .serve(|s| {
            s.analyzer.backend = Backend::Onnx;
            s.analyzer.bundles = vec![bundle()];
            s.analyzer.fallback_lag_secs = 30.0;
            s.analyzer.recover_lag_secs = 10.0;
        })
        .await;
    let env = &app.env;
    assert!(env.stored_exactly(40, Duration::from_secs(60)).await);
    // Fresh posts: the route switches back to the model.
    for i in 0..20 {
        env.xadd_post(
            &redis,
            &format!("new-{i}"),
            "This is the worst phone ever, I hate it",
        )
        .await;
    }
    assert!(env.stored_exactly(60, Duration::from_secs(60)).await);
    let pg = env.pg().await;
    let models: Vec<(String, String, i64)> = pg
        .query(
            "SELECT split_part(id, '-', 1), model, count(*) FROM posts GROUP BY 1, 2 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(models.len(), 2, "{models:?}");
    assert_eq!(models[0].0, "new");
    assert!(
        models[0].1.starts_with(&bundle_model_prefix()),
        "{models:?}"
    );
    assert_eq!(models[0].2, 20);
    assert_eq!(
        (models[1].0.as_str(), models[1].1.as_str(), models[1].2),
        ("old", "lexicon-vader@1", 40)
    );

    let labels: Vec<String> = pg
        .column(
            "SELECT DISTINCT sentiment_label FROM posts WHERE id LIKE 'new-%'",
            &[],
        )
        .await;
    assert_eq!(labels, vec!["negative".to_string()]);

    assert_metrics_hold(
        &app,
        &[
            "pulse_analyzer_switches_total{to=\"lexicon\"} 1",
            "pulse_analyzer_switches_total{to=\"model\"} 1",
            "pulse_analyzer_fallback_active 0",
        ],
    )
    .await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn the_analyze_endpoint_answers_synchronously_and_refuses_bad_requests() {
    let app = spawn_app_tuned(|s| {
        s.analyzer.backend = Backend::Onnx;
        s.analyzer.bundles = vec![bundle()];
    })
    .await;
    let (status, body) = app
        .post(
            "/api/v1/analyze",
            &json!({"texts": ["I love it, thank you so much!", "worst update ever, cancel my account"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let analyses = body["analyses"].as_array().unwrap();
    assert_eq!(analyses.len(), 2);
    assert_eq!(analyses[0]["sentiment"]["label"], "positive");
    assert_eq!(analyses[1]["sentiment"]["label"], "negative");
    assert!(
        analyses[1]["churn_risk"].as_f64().unwrap() > analyses[0]["churn_risk"].as_f64().unwrap()
    );
    assert!(body["model"]
        .as_str()
        .unwrap()
        .starts_with(&bundle_model_prefix()));
    assert_eq!(app.env.post_count().await, 0, "analysis stores nothing");

    for (body, code) in [
        (json!({"texts": []}), "empty_batch"),
        (json!({"texts": vec!["x"; 257]}), "too_many_texts"),
        (json!({"texts": ["a".repeat(20_001)]}), "text_too_long"),
        (json!({"text": "x"}), "invalid_json"),
    ] {
        let (status, err) = app.post("/api/v1/analyze", &body).await;
        assert_eq!(status, 400);
        assert_eq!(err["error"]["code"], code, "{err}");
    }
    app.shutdown().await;
}
