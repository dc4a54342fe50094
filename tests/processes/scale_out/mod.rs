//! Several `pulse serve` processes in one consumer group, seen as one: every post stored and
//! counted once, every WebSocket subscriber of every process sees every matching post once
//! and the alerts and virality updates any process produced, and a post's cascade counts
//! every share whichever process committed it, across the death of the tracking process;
//! a story is one across processes and restarts ([`stories`]).

mod stories;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use chrono::{TimeDelta, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Generous: three debug-build processes share two cores with the test.
const DEADLINE: Duration = Duration::from_secs(90);

/// The test environment's settings for a group of processes that share the work: small reads
/// so entries spread over every process, and a tracker that reacts quickly.
fn group_env(env: &TestEnv, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = env.env();
    for (k, v) in [
        ("PULSE_INGEST__READ_BATCH", "5"),
        ("PULSE_VIRALITY__SCORE_INTERVAL_MS", "200"),
        ("PULSE_VIRALITY__FEED_INTERVAL_MS", "100"),
        ("PULSE_VIRALITY__TAKEOVER_INTERVAL_MS", "300"),
        ("PULSE_VIRALITY__PUBLISH_STEP", "1"),
    ]
    .iter()
    .chain(extra)
    {
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

/// Starts `n` processes and waits until each one is subscribed to the fan-out and knows the
/// others listen.
async fn start_group(vars: &[(String, String)], n: usize) -> Vec<PulseProcess> {
    let group: Vec<PulseProcess> = (0..n).map(|_| PulseProcess::start(vars)).collect();
    wait_for_peers(&group).await;
    group
}

/// Waits until every process of `group` is subscribed and counts all the others as listeners.
async fn wait_for_peers(group: &[PulseProcess]) {
    let others = (group.len() - 1) as f64;
    for p in group {
        assert!(
            wait_until(DEADLINE, || async {
                metric(p.address, "pulse_fanout_subscribed").await == 1.0
                    && metric(p.address, "pulse_fanout_peers").await == others
            })
            .await,
            "process {} never heard of its {others} peers\n{}",
            p.address,
            p.log_text()
        );
    }
}

/// The sum of a metric's samples (every label set) in a process's `/metrics`; 0 when absent.
async fn metric(addr: SocketAddr, name: &str) -> f64 {
    metric_at(addr, name, "").await
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    match reqwest::get(format!("http://{addr}{path}")).await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

/// A WebSocket subscriber that records every message it receives, in order.
struct Subscriber {
    messages: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Connects to `addr`, subscribes with `subscribe`, waits for the ack, then records.
    async fn connect(addr: SocketAddr, subscribe: Value) -> Subscriber {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
            .await
            .unwrap();
        ws.send(Message::text(subscribe.to_string())).await.unwrap();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let frame = tokio::time::timeout_at(deadline, ws.next())
                .await
                .expect("an ack")
                .expect("open")
                .unwrap();
            if let Message::Text(text) = frame {
                let ack: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(ack["type"], "subscribed", "{ack}");
                break;
            }
        }
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        // Reading also answers the server's pings, so the session stays alive.
        let task = tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(text) = frame {
                    let msg: Value = serde_json::from_str(text.as_str()).unwrap();
                    sink.lock().unwrap().push(msg);
                }
            }
        });
        Subscriber { messages, task }
    }

    /// The messages of `type` (or of a type starting with `type` when it ends with `:`).
    fn of_type(&self, kind: &str) -> Vec<Value> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| {
                let t = m["type"].as_str().unwrap_or("");
                if kind.ends_with(':') {
                    t.starts_with(kind)
                } else {
                    t == kind
                }
            })
            .cloned()
            .collect()
    }

    /// Ids of the `message:new` posts received, in order (duplicates kept).
    fn post_ids(&self) -> Vec<String> {
        self.of_type("message:new")
            .iter()
            .map(|m| m["data"]["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn lagged(&self) -> usize {
        self.of_type("lagged").len()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn post(id: &str, platform: &str, text: &str, created: chrono::DateTime<Utc>) -> String {
    PostEvent::new(id, text)
        .platform(platform)
        .followers(1_000)
        .at(created)
        .to_string()
}

fn engagement(post_id: &str, kind: &str, n: usize, at: chrono::DateTime<Utc>) -> String {
    let mut e = json!({
        "type": "engagement", "id": format!("{post_id}:{kind}{n}"), "post_id": post_id,
        "kind": kind, "at": at.to_rfc3339(), "actor_followers": 150
    });
    if kind == "share" && n > 0 {
        // A chain: each share through the previous one, so the tree's depth shows that no
        // share is missing, whoever committed it.
        e["via"] = json!(format!("{post_id}:share{}", n - 1));
    }
    e.to_string()
}

/// Appends events a few at a time with pauses, so that every process of the group gets some.
/// A reader that has just read entries polls every millisecond for the next 200 ms, so a
/// shorter pause would let the process that read one chunk read every later one too.
async fn trickle(redis: &fred::prelude::Client, stream: &str, events: &[String]) {
    for chunk in events.chunks(10) {
        pulse::streams::producer::xadd_events(redis, stream, chunk)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_store_each_post_once_and_each_subscriber_gets_each_matching_post_once() {
    const N: usize = 300;
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    // Stories would add their own live messages to the fan-out's counts below, which count
    // posts.
    let group = start_group(&group_env(&env, &[("PULSE_STORIES__ENABLED", "false")]), 3).await;

    // On every process: one subscriber to every post, one to reddit posts only.
    let mut all = Vec::new();
    let mut reddit = Vec::new();
    for p in &group {
        all.push(
            Subscriber::connect(p.address, json!({"type":"subscribe","topics":["posts"]})).await,
        );
        reddit.push(
            Subscriber::connect(
                p.address,
                json!({"type":"subscribe","topics":["posts"],"filter":{"platform":"reddit"}}),
            )
            .await,
        );
    }

    let now = Utc::now();
    let events: Vec<String> = (0..N)
        .map(|i| {
            let platform = if i % 3 == 0 { "reddit" } else { "twitter" };
            post(
                &format!("p{i}"),
                platform,
                "The new phone is great, I love it",
                now,
            )
        })
        .collect();
    let expected_all: BTreeSet<String> = (0..N).map(|i| format!("p{i}")).collect();
    let expected_reddit: BTreeSet<String> = (0..N)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("p{i}"))
        .collect();
    trickle(&redis, &env.stream, &events).await;

    // (a) Stored once, counted once, by the group as one.
    assert!(
        env.worked_off(&redis, N as i64, DEADLINE).await,
        "stored {} of {N}",
        env.post_count().await
    );
    for p in &group {
        assert!(
            metric(p.address, "pulse_ingest_entries_acked_total").await > 0.0,
            "every process took part ({} did not)",
            p.address
        );
    }
    let pg = env.pg().await;
    let rollup = |dimension: &'static str, key: &'static str| {
        let pg = &pg;
        async move {
            pg.scalar::<i64>(
                "SELECT COALESCE(sum(posts), 0)::int8 FROM metric_rollups
                 WHERE dimension = $1 AND key = $2",
                &[&dimension, &key],
            )
            .await
        }
    };
    assert_eq!(rollup("overall", "").await, N as i64);
    assert_eq!(
        rollup("platform", "reddit").await,
        expected_reddit.len() as i64
    );
    assert_eq!(
        rollup("platform", "twitter").await,
        (N - expected_reddit.len()) as i64
    );
    assert_eq!(rollup("city", "Lyon").await, N as i64);
    let (_, overall) = get(group[1].address, "/api/v1/metrics/overall?window=5m").await;
    assert_eq!(overall["stats"]["posts"], json!(N), "{overall}");

    // (b) Every subscriber of every process: every matching post, once.
    let complete = |subs: &[Subscriber], expected: &BTreeSet<String>| {
        subs.iter().all(|s| {
            let got: BTreeSet<String> = s.post_ids().into_iter().collect();
            &got == expected
        })
    };
    assert!(
        wait_until(DEADLINE, || async {
            complete(&all, &expected_all) && complete(&reddit, &expected_reddit)
        })
        .await,
        "received: all {:?}, reddit {:?}",
        all.iter().map(|s| s.post_ids().len()).collect::<Vec<_>>(),
        reddit
            .iter()
            .map(|s| s.post_ids().len())
            .collect::<Vec<_>>()
    );
    // A moment for any duplicate still on its way to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, s) in all.iter().chain(&reddit).enumerate() {
        let ids = s.post_ids();
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), distinct.len(), "subscriber {i} got a post twice");
        assert_eq!(s.lagged(), 0, "subscriber {i} lagged");
    }
    for s in &reddit {
        assert!(s
            .of_type("message:new")
            .iter()
            .all(|m| m["data"]["platform"] == "reddit"));
    }
    // The same post has the same shape whichever process delivered it.
    let first = |s: &Subscriber| {
        s.of_type("message:new")
            .into_iter()
            .find(|m| m["data"]["id"] == "p0")
            .unwrap()
    };
    assert_eq!(first(&all[0]), first(&all[1]));
    assert_eq!(first(&all[0]), first(&all[2]));
    let mut published = 0.0;
    let mut received = 0.0;
    for p in &group {
        published += metric(p.address, "pulse_fanout_messages_published_total").await;
        received += metric(p.address, "pulse_fanout_messages_received_total").await;
        assert_eq!(
            metric(p.address, "pulse_fanout_messages_dropped_total").await,
            0.0
        );
    }
    // Each post published once by the process that committed it, received by the two others.
    assert_eq!(published, N as f64);
    assert_eq!(received, 2.0 * N as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_virality_updates_of_one_process_reach_the_subscribers_of_all() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let vars = group_env(
        &env,
        &[
            ("PULSE_ALERTS__ENABLED", "true"),
            ("PULSE_ALERTS__EVALUATE_EVERY_SECS", "0.5"),
        ],
    );
    let group = start_group(&vars, 3).await;
    let mut subs = Vec::new();
    for p in &group {
        subs.push(
            Subscriber::connect(
                p.address,
                json!({"type":"subscribe","topics":["alerts","virality"]}),
            )
            .await,
        );
    }

    // Thirty angry posts fire the default negativity rule (in one process: the database
    // keeps one open alert per rule and scope); a cascade of forty shares makes its post's
    // score move (in the one process that tracks cascades).
    let now = Utc::now();
    let mut events: Vec<String> = (0..30)
        .map(|i| {
            post(
                &format!("angry-{i}"),
                "twitter",
                "This is terrible, I hate it, worst phone ever, awful",
                now,
            )
        })
        .collect();
    let created = now - TimeDelta::minutes(1);
    events.push(post(
        "viral",
        "twitter",
        "Look at the new #PulsePhone camera",
        created,
    ));
    for i in 0..40 {
        events.push(engagement(
            "viral",
            "share",
            i,
            created + TimeDelta::seconds(i as i64 + 1),
        ));
    }
    trickle(&redis, &env.stream, &events).await;

    // Alerts: each one in the database reaches every subscriber of every process, once.
    let stored_alerts = || async {
        let (_, body) = get(group[0].address, "/api/v1/alerts").await;
        body["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["id"].to_string())
                    .collect::<BTreeSet<String>>()
            })
            .unwrap_or_default()
    };
    assert!(
        wait_until(DEADLINE, || async {
            let stored = stored_alerts().await;
            !stored.is_empty()
                && subs.iter().all(|s| {
                    let got: BTreeSet<String> = s
                        .of_type("alert:")
                        .iter()
                        .map(|m| m["data"]["id"].to_string())
                        .collect();
                    got == stored
                })
        })
        .await,
        "alerts stored {:?}; received {:?}",
        stored_alerts().await,
        subs.iter()
            .map(|s| s.of_type("alert:").len())
            .collect::<Vec<_>>()
    );
    let stored = stored_alerts().await;
    let mut fired = 0.0;
    for p in &group {
        fired += metric(p.address, "pulse_alerts_fired_total").await;
    }
    assert_eq!(
        fired,
        stored.len() as f64,
        "each alert announced by one process"
    );

    // Virality: one process tracks; every subscriber gets its updates, the same ones, once.
    let mut leaders = Vec::new();
    for p in &group {
        if metric(p.address, "pulse_virality_leader").await == 1.0 {
            leaders.push(p.address);
        }
    }
    assert_eq!(leaders.len(), 1, "exactly one process tracks cascades");
    let updates = |s: &Subscriber| -> Vec<(String, String, String)> {
        s.of_type("virality:update")
            .iter()
            .map(|m| {
                let d = &m["data"];
                (
                    d["post_id"].as_str().unwrap().to_string(),
                    d["observed_at"].to_string(),
                    d["virality_score"].to_string(),
                )
            })
            .collect()
    };
    assert!(
        wait_until(DEADLINE, || async {
            subs.iter()
                .all(|s| updates(s).iter().any(|(id, _, _)| id == "viral"))
        })
        .await,
        "virality updates received: {:?}",
        subs.iter().map(|s| updates(s).len()).collect::<Vec<_>>()
    );
    let (_, current) = get(group[2].address, "/api/v1/posts/viral/virality").await;
    assert!(
        wait_until(DEADLINE, || async {
            let (_, v) = get(group[2].address, "/api/v1/posts/viral/virality").await;
            v["current"]["counts"]["shares"] == json!(40)
        })
        .await,
        "{current}"
    );
    // The last updates reach every subscriber: the same set everywhere, as many as the leader
    // produced.
    let leader = leaders[0];
    let agreed = wait_until(DEADLINE, || async {
        let reference: BTreeSet<_> = updates(&subs[0]).into_iter().collect();
        let produced = metric(leader, "pulse_virality_updates_total").await;
        subs.iter()
            .all(|s| updates(s).into_iter().collect::<BTreeSet<_>>() == reference)
            && produced == reference.len() as f64
    })
    .await;
    assert!(agreed, "the subscribers never agreed with the leader");
    let reference = updates(&subs[0]);
    for (i, s) in subs.iter().enumerate() {
        let got = updates(s);
        let distinct: BTreeSet<&(String, String, String)> = got.iter().collect();
        assert_eq!(
            got.len(),
            distinct.len(),
            "subscriber {i} got an update twice"
        );
        assert_eq!(
            got.iter().collect::<BTreeSet<_>>(),
            reference.iter().collect::<BTreeSet<_>>(),
            "subscriber {i} saw other updates"
        );
    }
    let produced = metric(leaders[0], "pulse_virality_updates_total").await;
    assert_eq!(produced, reference.len() as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_committed_by_several_processes_counts_every_share_across_a_takeover() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let mut group = start_group(&group_env(&env, &[]), 3).await;

    let created = Utc::now() - TimeDelta::minutes(2);
    // Engagement `i` of a kind comes `i + 1` seconds after the post.
    let engagements = |kind: &'static str, range: std::ops::Range<usize>| {
        range.map(move |i| engagement("split", kind, i, created + TimeDelta::seconds(i as i64 + 1)))
    };
    let mut events = vec![post("split", "twitter", "The #PulsePhone camera", created)];
    events.extend(engagements("share", 0..60));
    events.extend(engagements("like", 0..20));
    trickle(&redis, &env.stream, &events).await;

    let virality = |addr: SocketAddr| async move {
        let (status, v) = get(addr, "/api/v1/posts/split/virality").await;
        (status == 200).then(|| v["current"].clone())
    };
    let reaches = |addr: SocketAddr, shares: u64, likes: u64| async move {
        virality(addr).await.is_some_and(|c| {
            c["counts"]["shares"] == json!(shares) && c["counts"]["likes"] == json!(likes)
        })
    };
    assert!(
        wait_until(DEADLINE, || reaches(group[0].address, 60, 20)).await,
        "{:?}",
        virality(group[0].address).await
    );
    // The engagements were committed by more than one process...
    let mut committers = 0;
    for p in &group {
        if metric_at(
            p.address,
            "pulse_store_rows_inserted_total",
            r#"table="engagements""#,
        )
        .await
            > 0.0
        {
            committers += 1;
        }
    }
    assert!(
        committers >= 2,
        "the cascade was split over {committers} process(es)"
    );
    // ...and the one cascade has all of them: the chain is whole.
    let current = virality(group[0].address).await.unwrap();
    assert_eq!(current["structure"]["depth"], 60, "{current}");
    assert_eq!(current["platform"], "twitter");
    assert_eq!(current["product"], "pulse-phone");

    // The tracking process dies mid-stream; another takes over and loses or repeats nothing.
    let mut leader = None;
    for (i, p) in group.iter().enumerate() {
        if metric(p.address, "pulse_virality_leader").await == 1.0 {
            leader = Some(i);
        }
    }
    let leader = leader.expect("one process tracks cascades");
    let more: Vec<String> = engagements("share", 60..80)
        .chain(engagements("like", 20..30))
        .collect();
    pulse::streams::producer::xadd_events(&redis, &env.stream, &more[..15])
        .await
        .unwrap();
    let dead = group.remove(leader);
    dead.signal(libc::SIGKILL);
    drop(dead);
    trickle(&redis, &env.stream, &more[15..]).await;

    let survivor = group[0].address;
    assert!(
        wait_until(DEADLINE, || async {
            let mut leaders = 0;
            for p in &group {
                if metric(p.address, "pulse_virality_leader").await == 1.0 {
                    leaders += 1;
                }
            }
            leaders == 1
        })
        .await,
        "a surviving process took the tracker over"
    );
    assert!(
        wait_until(DEADLINE, || reaches(survivor, 80, 30)).await,
        "{:?}",
        virality(survivor).await
    );
    // Exactly: nothing applied twice after the takeover either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let current = virality(survivor).await.unwrap();
    assert_eq!(current["counts"]["shares"], 80, "{current}");
    assert_eq!(current["counts"]["likes"], 30, "{current}");
    assert_eq!(current["structure"]["depth"], 80, "{current}");
    // No prediction recorded twice: the process that took over resumed where the one that
    // died had written, not before.
    let pg = env.pg().await;
    let rows = pg
        .query(
            "SELECT observed_at::text, shares, virality_score::text, predicted_final_shares::text
             FROM virality_predictions WHERE post_id = 'split'",
            &[],
        )
        .await
        .unwrap();
    let mut seen: HashMap<(String, i64, String, String), usize> = HashMap::new();
    for r in &rows {
        *seen
            .entry((r.get(0), r.get(1), r.get(2), r.get(3)))
            .or_default() += 1;
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "a prediction was recorded twice: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fan_out_resumes_after_redis_restarts_and_never_holds_up_the_pipeline() {
    let mut redis_server = PrivateRedis::start();
    let env = TestEnv::on(admin_url(), redis_server.url()).await;
    let vars = group_env(&env, &[]);
    let group = start_group(&vars, 2).await;
    let subs = [
        Subscriber::connect(
            group[0].address,
            json!({"type":"subscribe","topics":["posts"]}),
        )
        .await,
        Subscriber::connect(
            group[1].address,
            json!({"type":"subscribe","topics":["posts"]}),
        )
        .await,
    ];
    let now = Utc::now();
    let before: Vec<String> = (0..40)
        .map(|i| post(&format!("before-{i}"), "twitter", "Nice phone", now))
        .collect();
    let redis = env.redis().await;
    trickle(&redis, &env.stream, &before).await;
    assert!(env.stored_exactly(40, DEADLINE).await);

    redis_server.restart();
    // Both processes subscribe again by themselves (their sessions stay open meanwhile)...
    for p in &group {
        assert!(
            wait_until(DEADLINE, || async {
                p.log_text().matches("fan-out subscribed").count() >= 2
            })
            .await,
            "{} did not subscribe again\n{}",
            p.address,
            p.log_text()
        );
    }
    // ...and count each other again (a count taken while only one was back may linger for one
    // probe interval).
    tokio::time::sleep(3 * pulse::ws::fanout::PEER_PROBE).await;
    wait_for_peers(&group).await;
    let after: Vec<String> = (0..60)
        .map(|i| post(&format!("after-{i}"), "twitter", "Nice phone", now))
        .collect();
    let expected: BTreeSet<String> = (0..60).map(|i| format!("after-{i}")).collect();
    let redis = env.redis().await;
    trickle(&redis, &env.stream, &after).await;
    assert!(
        wait_until(DEADLINE, || async {
            env.post_count().await == 100 && env.pending(&redis).await == 0
        })
        .await,
        "the pipeline went on ({} stored)",
        env.post_count().await
    );
    assert!(
        wait_until(DEADLINE, || async {
            subs.iter().all(|s| {
                let got: BTreeSet<String> = s
                    .post_ids()
                    .into_iter()
                    .filter(|id| id.starts_with("after-"))
                    .collect();
                got == expected
            })
        })
        .await,
        "posts after the restart reached every subscriber: {:?}",
        subs.iter().map(|s| s.post_ids().len()).collect::<Vec<_>>()
    );
    for s in &subs {
        let ids = s.post_ids();
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), distinct.len(), "a post delivered twice");
    }
}
