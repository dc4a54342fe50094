//! What a process reads again when topics change: only the queries and models that did.

use super::*;

/// Adopts a model for `topic` as training does, with a threshold of 0.5.
async fn adopt_model(pool: &deadpool_postgres::Pool, topic: i64) {
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    pulse::db::relevance::set_threshold(&tx, topic, 0.5)
        .await
        .unwrap();
    let weights: Vec<u8> = [(3u32, 0.5f32), (9, -0.25)]
        .iter()
        .flat_map(|(i, w)| i.to_le_bytes().into_iter().chain(w.to_le_bytes()))
        .collect();
    let trained = pulse::db::relevance::Trained {
        topic_id: topic,
        changes: 1,
        labels: 10,
        related: 5,
        through_label: 0,
        accuracy: 1.0,
        incumbent: 0.5,
        adopted: true,
        reason: "adopted",
        weights: Some((0.1, weights)),
    };
    pulse::db::relevance::record(&tx, &trained).await.unwrap();
    tx.commit().await.unwrap();
}

/// Any change of one topic (a rename, a threshold, an adoption) had every process read every
/// active query and compile it, and read and decode every adopted model, weights and all. A
/// process reads only what it does not hold: a rename nothing, an edited query that query
/// alone, an adoption that model alone; the other topics' models and parsed queries are the
/// ones it held.
#[actix_rt::test]
async fn a_process_reads_only_the_topics_and_models_that_changed() {
    use pulse::actors::topics::{refresh, Reload};
    use std::sync::Arc;
    let app = spawn_app().await;
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    let (a, b) = (
        app.create_topic("Apple", "apple").await,
        app.create_topic("Banana", "banana").await,
    );
    adopt_model(&pool, a).await;
    adopt_model(&pool, b).await;
    // A process of its own, loading as its watcher would.
    let live = pulse::topics::LiveTopics::new();
    let loaded = refresh(&pool, &live).await.unwrap();
    let all = Reload {
        rebuilt: true,
        queries: 2,
        models: 2,
    };
    assert_eq!(loaded, Some(all));
    let before = live.loaded();
    let model = |l: &pulse::topics::Loaded, topic: i64| l.filters.get(topic).unwrap().model.clone();
    let parsed = |l: &pulse::topics::Loaded, topic: i64| {
        l.parsed.as_ref().unwrap()[&topic].1.clone().unwrap()
    };

    let path = format!("/api/v1/topics/{a}");
    assert_eq!(app.patch(&path, &json!({"name": "Apples"})).await.0, 200);
    assert_eq!(refresh(&pool, &live).await.unwrap(), None, "a rename");
    assert!(Arc::ptr_eq(&live.get(), &before.set));

    assert_eq!(app.patch(&path, &json!({"query": "apples"})).await.0, 200);
    let edited = Reload {
        rebuilt: true,
        queries: 1,
        models: 0,
    };
    assert_eq!(refresh(&pool, &live).await.unwrap(), Some(edited));
    let after = live.loaded();
    let versions: Vec<(i64, i32)> = after.set.topics().map(|t| (t.id, t.version)).collect();
    assert_eq!(versions, [(a, 2), (b, 1)]);
    assert!(Arc::ptr_eq(&parsed(&after, b), &parsed(&before, b)));
    for topic in [a, b] {
        assert!(Arc::ptr_eq(&model(&after, topic), &model(&before, topic)));
    }

    let threshold = json!({"threshold": 0.7});
    let put = reqwest::Method::PUT;
    let relevance = format!("/api/v1/topics/{b}/relevance");
    assert_eq!(
        app.request(put, &relevance, Some(&threshold), None).await.0,
        200
    );
    assert_eq!(
        refresh(&pool, &live).await.unwrap(),
        Some(Reload::default())
    );
    let held = live.loaded();
    assert!(Arc::ptr_eq(&held.set, &after.set));
    assert_eq!(held.filters.get(b).unwrap().threshold, 0.7);
    assert!(Arc::ptr_eq(&model(&held, b), &model(&before, b)));

    adopt_model(&pool, a).await;
    let adopted = Reload {
        rebuilt: false,
        queries: 0,
        models: 1,
    };
    assert_eq!(refresh(&pool, &live).await.unwrap(), Some(adopted));
    let held = live.loaded();
    assert!(!Arc::ptr_eq(&model(&held, a), &model(&before, a)));
    assert!(Arc::ptr_eq(&model(&held, b), &model(&before, b)));
    app.shutdown().await;
}
