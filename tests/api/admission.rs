//! Admission of producers while the pipeline is behind: by the age of the oldest entry the
//! group has not stored, and by fair shares of what it drains, so one producer's flood is its
//! own wait and not everyone's.

use crate::common;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::secured::SecuredServer;
use common::*;
use fred::prelude::*;
use pulse::auth::Role;
use serde_json::Value;

/// An array of `n` posts with ids `prefix-0..n`.
fn posts(prefix: &str, n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            post_json(
                &format!("{prefix}-{i}"),
                "The new phone is great, I love it",
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Appends `n` posts whose entry ids say they were appended `age_ms` ago (ids after `seq`):
/// a backlog that looks that old at once.
async fn xadd_aged(redis: &Client, stream: &str, age_ms: i64, seq: &AtomicU64, n: usize) {
    let ms = chrono::Utc::now().timestamp_millis() - age_ms;
    let pipeline = redis.pipeline();
    for _ in 0..n {
        let seq = seq.fetch_add(1, Ordering::Relaxed) + 1;
        let json = post_json(&unique("aged"), "an old entry");
        let _: () = pipeline
            .xadd(
                stream,
                false,
                None::<()>,
                format!("{ms}-{seq}"),
                vec![("event", json)],
            )
            .await
            .unwrap();
    }
    let _: Vec<fred::types::Value> = pipeline.all().await.unwrap();
}

#[actix_rt::test]
async fn every_producer_waits_while_the_oldest_unstored_entry_is_older_than_the_limit() {
    // Entries appended ten minutes ago and held by a consumer that never acknowledges them (a
    // process stopped cold, before its entries are claimed): the group's oldest entry stays
    // that old whatever the server reads meanwhile.
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    xadd_aged(&redis, &env.stream, 600_000, &AtomicU64::new(0), 3).await;
    let held = env.read_as(&redis, "stopped-cold", 3).await;
    assert!(format!("{held:?}").contains("an old entry"), "{held:?}");
    let s = SecuredServer::start_in(env, |s| {
        backlog_limits(s, 0, 30.0, 0.0);
        s.ingest.claim_idle_ms = 3_600_000;
    })
    .await;
    let key = s.key(Role::Ingest).key.clone();
    let res = s.post_events_as(&key, &posts(&unique("late"), 1)).await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert_eq!(res.json()["error"]["details"]["reason"], "backlog_age");
    assert!(res.headers.contains_key("retry-after"), "{:?}", res.headers);

    // Sources and imports wait on the same limits: on a stream of their own that nothing
    // reads, so the old entries stay unread.
    let (settings, gate) = unread_gate(&s, &redis, 30.0).await;
    assert_eq!(gate.behind(&redis).await.unwrap(), None, "an empty stream");
    xadd_aged(
        &redis,
        &settings.redis.stream,
        600_000,
        &AtomicU64::new(0),
        10,
    )
    .await;
    let why = gate.behind(&redis).await.unwrap();
    assert!(
        why.as_deref().is_some_and(|w| w.contains("waited")),
        "{why:?}"
    );
    let _: i64 = redis.del(&settings.redis.stream).await.unwrap();
}

/// Appends `n` posts with ids a producer set itself far ahead of the clock (microseconds
/// taken for milliseconds), as Redis then numbers every later entry of the stream.
async fn xadd_ahead(redis: &Client, stream: &str, n: usize) {
    for seq in 1..=n {
        let json = post_json(&unique("ahead"), "an entry ahead of the clock");
        let _: String = redis
            .xadd(
                stream,
                false,
                None::<()>,
                format!("{}-{seq}", 99_999_999_999_999u64),
                vec![("event", json)],
            )
            .await
            .unwrap();
    }
}

#[actix_rt::test]
async fn entries_whose_ids_are_ahead_of_the_clock_still_age_past_the_backlog_limit() {
    // Held by a consumer that never acknowledges them, entries whose ids claim a time far
    // ahead: read off their ids they would be 0 s old for ever, and no backlog limit would
    // ever engage. They count as waiting from when the server first saw them.
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    xadd_ahead(&redis, &env.stream, 3).await;
    let held = env.read_as(&redis, "stopped-cold", 3).await;
    assert!(
        format!("{held:?}").contains("ahead of the clock"),
        "{held:?}"
    );
    let s = SecuredServer::start_in(env, |s| {
        s.limits.rate_limits = false;
        backlog_limits(s, 0, 1.0, 0.0);
        s.ingest.claim_idle_ms = 3_600_000;
    })
    .await;
    let key = s.key(Role::Ingest).key.clone();
    // Until they have waited past the limit, producers are let in, with ids past theirs.
    let accepted = std::sync::Mutex::new(Vec::new());
    let refused = wait_until(Duration::from_secs(120), || async {
        let res = s.post_events_as(&key, &posts(&unique("late"), 1)).await;
        if res.status == 202 {
            let id = res.json()["ids"][0]
                .as_str()
                .unwrap_or_default()
                .to_string();
            accepted.lock().unwrap().push(id);
        }
        res.status == 503 && res.json()["error"]["details"]["reason"] == "backlog_age"
    })
    .await;
    assert!(refused, "the backlog's age never passed the limit");
    for id in accepted.lock().unwrap().iter() {
        assert!(id.starts_with("99999999999999-"), "{id}");
    }

    // Sources and imports wait on the same limit: on a stream of their own that nothing
    // reads, so the entries stay unread.
    let (settings, gate) = unread_gate(&s, &redis, 1.0).await;
    xadd_ahead(&redis, &settings.redis.stream, 10).await;
    let engaged = wait_until(Duration::from_secs(120), || async {
        let why = gate.behind(&redis).await.unwrap();
        why.is_some_and(|w| w.contains("waited"))
    })
    .await;
    assert!(engaged, "the gate never saw the unread entries wait");
    let stats = pulse::streams::group::group_stats(&redis, &settings)
        .await
        .unwrap();
    assert!(
        stats.oldest_age_secs.is_some_and(|age| age > 1.0),
        "{stats:?}"
    );
    let _: i64 = redis.del(&settings.redis.stream).await.unwrap();
}

/// The intake's gate, with `max_backlog_secs` its only limit, over a stream of its own that
/// nothing reads: how sources and imports wait, with the entries a test adds left unread.
async fn unread_gate(
    s: &SecuredServer,
    redis: &Client,
    max_backlog_secs: f64,
) -> (pulse::config::Settings, pulse::streams::admission::Gate) {
    let mut settings = s.env.settings();
    settings.redis.stream = format!("{}:unread", s.env.stream);
    settings.ingest.max_backlog = 0;
    settings.ingest.max_backlog_secs = max_backlog_secs;
    pulse::streams::group::ensure_group(redis, &settings.redis.stream, &settings.redis.group)
        .await
        .unwrap();
    let gate = pulse::streams::admission::Gate::of_intake(Arc::new(settings.clone()));
    (settings, gate)
}

/// A server without budgets or backlog limits whose pipeline takes `batch` entries at a time,
/// so a flood puts it behind; its ingest key and a second one, "quiet".
async fn slow_server(
    batch: usize,
    fair_share_after_secs: f64,
) -> (Arc<SecuredServer>, String, String) {
    let s = SecuredServer::start(|s| {
        s.limits.rate_limits = false;
        backlog_limits(s, 0, 0.0, fair_share_after_secs);
        s.ingest.read_batch = batch;
        s.ingest.max_in_flight = batch;
        s.ingest.max_batches_in_flight = 1;
    })
    .await;
    let first = s.key(Role::Ingest).key.clone();
    let quiet = s.create_key(Role::Ingest, "quiet").await.key;
    (Arc::new(s), first, quiet)
}

#[actix_rt::test]
async fn while_the_pipeline_is_behind_a_flooding_key_waits_and_a_quiet_one_does_not() {
    let (s, flood_key, quiet_key) = slow_server(50, 0.5).await;
    let stop = Arc::new(AtomicBool::new(false));
    let shared_refusals = Arc::new(AtomicU64::new(0));
    let flood = {
        let (s, stop, refusals) = (s.clone(), stop.clone(), shared_refusals.clone());
        tokio::spawn(async move {
            let mut accepted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let res = s
                    .post_events_as(&flood_key, &posts(&unique("flood"), 200))
                    .await;
                match res.status {
                    202 => accepted += 200,
                    503 => {
                        assert_eq!(
                            res.json()["error"]["details"]["reason"],
                            "share",
                            "{}",
                            res.body
                        );
                        assert!(res.headers.contains_key("retry-after"));
                        refusals.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("the flood got {other}: {}", res.body),
                }
            }
            accepted
        })
    };
    // The quiet producer sends one post every 400 ms until the flood has been held back
    // several times, and never waits. Quiet means asking less than a share: at its floor a
    // share is a tenth of what the group drains, which on a busy machine can be a few posts a
    // second.
    let mut quiet_sent = 0;
    let mut sent_while_sharing = 0;
    for _ in 0..300 {
        let res = s
            .post_events_as(&quiet_key, &posts(&unique("quiet"), 1))
            .await;
        assert_eq!(
            res.status, 202,
            "the quiet producer was refused: {}",
            res.body
        );
        quiet_sent += 1;
        if shared_refusals.load(Ordering::Relaxed) > 0 {
            sent_while_sharing += 1;
            if sent_while_sharing >= 20 && shared_refusals.load(Ordering::Relaxed) >= 5 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let status = s.analyst("GET", "/api/v1/pipeline", None).await.json();
    stop.store(true, Ordering::Relaxed);
    let flooded = flood.await.unwrap();
    assert!(
        shared_refusals.load(Ordering::Relaxed) >= 5,
        "the flood was never held back ({flooded} accepted, {quiet_sent} quiet posts)"
    );
    // Held by its window or by its share, as the backlog went: the pipeline API shows it.
    let producers = status["producers"].as_array().unwrap();
    let lane = |name: &str| {
        producers
            .iter()
            .find(|p| p["producer"].as_str().unwrap_or("").ends_with(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let flood_id = s.key(Role::Ingest).info.id.clone();
    assert!(
        lane(&flood_id)["refused"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
    assert!(
        lane(&flood_id)["told_wait_secs"].as_f64().is_some(),
        "{status}"
    );
}

/// The first seconds of a burst, before any drained rate is known and before the group is
/// behind: requests of one key sent side by side pass while fewer than a window (500) of its
/// entries wait, the rest are told to retry, and another key appends at once.
#[actix_rt::test]
async fn a_burst_sent_side_by_side_is_held_to_its_window_at_once() {
    const REQUESTS: usize = 6;
    /// Requests of the most events a request may hold: two pass only if the group took more
    /// than 500 of the first's in between, which a pipeline taking 5 entries at a time cannot
    /// do while requests sent together are read.
    const EACH: usize = 1_000;
    let (s, burst_key, quiet_key) = slow_server(
        5,
        pulse::config::Settings::default()
            .ingest
            .fair_share_after_secs,
    )
    .await;
    let burst: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (s, key) = (s.clone(), burst_key.clone());
            tokio::spawn(
                async move { s.post_events_as(&key, &posts(&unique("burst"), EACH)).await },
            )
        })
        .collect();
    let (mut accepted, mut held) = (0, 0);
    for request in burst {
        let res = request.await.unwrap();
        match res.status {
            202 => accepted += 1,
            503 => {
                let details = &res.json()["error"]["details"];
                assert_eq!(details["reason"], "share", "{}", res.body);
                assert_eq!(details["limit"], "window", "{}", res.body);
                let wait: u64 = res.headers["retry-after"].parse().unwrap();
                assert!(wait >= 1, "{wait}");
                held += 1;
            }
            other => panic!("the burst got {other}: {}", res.body),
        }
    }
    assert!(accepted >= 1, "the first request of a burst is admitted");
    assert!(
        held >= 1,
        "{accepted} of {REQUESTS} requests of {EACH} were all admitted"
    );
    let quiet = s
        .post_events_as(&quiet_key, &posts(&unique("quiet"), 1))
        .await;
    assert_eq!(quiet.status, 202, "{}", quiet.body);
}
