//! Chaos under load: real `pulse serve` processes sharing one consumer group on a private
//! Redis and a private PostgreSQL (so restarting them disturbs no other test), while a
//! producer appends a few hundred posts per second. Each scenario injects one kind of fault,
//! then checks what Pulse promises: every post appended is stored exactly once, the
//! per-minute rollups count every stored post once, nothing is left pending in the group,
//! and the dead-letter stream holds exactly the poison entries, each once.
//!
//! Each scenario prints its time to recover: from the fault until the backlog it caused is
//! drained, i.e. the last moment the group was behind — an entry appended before the fault
//! still unacknowledged, or an unacknowledged entry older than [`CAUGHT_UP`] — before it
//! stayed caught up for [`SETTLE`]. Speed is not asserted here (the benchmark measures it);
//! run `cargo nextest run --test processes -E 'test(chaos::)' --no-capture` to see the figures.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use fred::prelude::*;

/// Posts the producer offers per second.
const RATE: usize = 300;
/// The producer's pacing tick.
const TICK: Duration = Duration::from_millis(50);
/// Likes per tick on posts already sent (they exercise the engagement rollups).
const LIKES_PER_TICK: usize = 2;
/// The group has caught up when its oldest unacknowledged entry is younger than this.
const CAUGHT_UP: Duration = Duration::from_secs(1);
/// How long the group must stay caught up for a recovery to count as done: longer than a
/// claim timeout plus a claim round, so a fault whose effect shows late is still seen.
const SETTLE: Duration = Duration::from_secs(3);
/// A look at the group that takes longer than this means Redis was not answering.
const UNRESPONSIVE: Duration = Duration::from_millis(500);
/// Longest wait for a recovery before it is reported as not reached (not a failure: the end
/// state is what is asserted).
const RECOVERY_PATIENCE: Duration = Duration::from_secs(90);
/// Longest wait for the group to drain once the load stops (a failure past it).
const DRAIN_PATIENCE: Duration = Duration::from_secs(180);
/// Longest wait for the settling pass to release likes that raced their post.
const SETTLE_PATIENCE: Duration = Duration::from_secs(60);
/// The claim timeout the processes run with (tests' `PULSE_INGEST__CLAIM_IDLE_MS`).
const CLAIM_IDLE: Duration = Duration::from_millis(1_000);

/// A stream entry id as `(milliseconds, sequence)`, ordered as Redis orders them.
type EntryId = (i64, i64);

fn parse_id(id: &str) -> Option<EntryId> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// What the producer appended.
#[derive(Debug, Default)]
struct Produced {
    /// Posts `<prefix>-0 .. <prefix>-<posts>`.
    posts: usize,
    /// Likes with producer ids (each stored once), and the sum of their counts.
    likes: usize,
    like_total: i64,
    /// Entry ids of the poison entries, each appended once.
    poison: Vec<String>,
}

/// A producer task appending posts and likes at [`RATE`], retrying a failed round trip as a
/// real producer would (so a Redis restart may append an event twice, which Pulse absorbs).
struct Producer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Produced>,
    prefix: String,
}

impl Producer {
    fn start(env: &TestEnv, trickle_poison: bool) -> Producer {
        let stop = Arc::new(AtomicBool::new(false));
        let prefix = unique("chaos");
        let (url, stream, flag, ids) = (
            env.redis_url.clone(),
            env.stream.clone(),
            stop.clone(),
            prefix.clone(),
        );
        let task = tokio::spawn(async move {
            let redis = pulse::streams::connect(&url, "chaos-producer")
                .await
                .expect("producer connects");
            let mut produced = Produced::default();
            let per_tick = (RATE as f64 * TICK.as_secs_f64()).round() as usize;
            let mut next = Instant::now();
            let mut tick = 0usize;
            while !flag.load(Ordering::Acquire) {
                let mut events = Vec::with_capacity(per_tick + LIKES_PER_TICK);
                for _ in 0..per_tick {
                    events.push(post(&ids, produced.posts));
                    produced.posts += 1;
                }
                for _ in 0..LIKES_PER_TICK {
                    let count = 1 + (produced.likes % 3) as i64;
                    let target = (produced.likes * 7919) % produced.posts;
                    events.push(like(&ids, produced.likes, target, count));
                    produced.likes += 1;
                    produced.like_total += count;
                }
                while pulse::streams::producer::xadd_events(&redis, &stream, &events)
                    .await
                    .is_err()
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if trickle_poison && tick % 10 == 5 {
                    let entry = poison_entries().swap_remove(tick / 10 % POISON_KINDS);
                    produced.poison.push(xadd_raw(&redis, &stream, entry).await);
                }
                tick += 1;
                next += TICK;
                let now = Instant::now();
                if next > now {
                    tokio::time::sleep(next - now).await;
                } else {
                    next = now;
                }
            }
            produced
        });
        Producer { stop, task, prefix }
    }

    async fn finish(self) -> (Produced, String) {
        self.stop.store(true, Ordering::Release);
        (self.task.await.expect("producer"), self.prefix)
    }
}

const PLATFORMS: [&str; 4] = ["twitter", "reddit", "instagram", "tiktok"];
const PLACES: [(&str, &str); 4] = [
    ("Lyon", "FR"),
    ("Berlin", "DE"),
    ("Austin", "US"),
    ("Osaka", "JP"),
];
const TEXTS: [&str; 4] = [
    "The new phone is great, I love it",
    "Cancelling my subscription, the app keeps crashing",
    "Delivery arrived on Tuesday",
    "Support was slow and rude, really disappointed",
];

fn post(prefix: &str, n: usize) -> String {
    let (city, country) = PLACES[n / 3 % PLACES.len()];
    serde_json::json!({
        "type": "post", "id": format!("{prefix}-{n}"), "platform": PLATFORMS[n % PLATFORMS.len()],
        "author": {"id": format!("author-{}", n % 97), "followers": n % 5_000},
        "text": TEXTS[n % TEXTS.len()], "created_at": chrono::Utc::now().to_rfc3339(),
        "geo": {"city": city, "country": country},
        "product": if n.is_multiple_of(2) { "pulse-phone" } else { "pulse-watch" },
        "channel": if n.is_multiple_of(5) { "support" } else { "organic" }
    })
    .to_string()
}

fn like(prefix: &str, n: usize, target: usize, count: i64) -> String {
    serde_json::json!({
        "type": "engagement", "id": format!("{prefix}-like-{n}"),
        "post_id": format!("{prefix}-{target}"), "kind": "like",
        "at": chrono::Utc::now().to_rfc3339(), "count": count
    })
    .to_string()
}

/// Kinds of poison entries [`poison_entries`] returns.
const POISON_KINDS: usize = 9;

/// One of each kind of entry Pulse must dead-letter: invalid JSON, wrong types, a huge event,
/// an oversize text, a missing `event` field (with a huge field instead), binary garbage, an
/// unknown event type, a NUL in a text, and JSON that is not an object.
fn poison_entries() -> Vec<Vec<(String, Value)>> {
    let event = |v: Value| vec![("event".to_string(), v)];
    let text = |s: String| Value::String(s.into());
    let wrong_types = serde_json::json!({
        "type": "post", "id": 42, "platform": "twitter", "author": {"id": "a", "followers": "many"},
        "text": "hi", "created_at": "yesterday"
    });
    let huge_event = serde_json::json!({
        "type": "post", "id": "huge", "platform": "twitter", "author": {"id": "a", "followers": 1},
        "text": "x".repeat(1 << 20), "created_at": "2026-01-01T00:00:00Z"
    });
    let long_text = serde_json::json!({
        "type": "post", "id": "long", "platform": "twitter", "author": {"id": "a", "followers": 1},
        "text": "y".repeat(30_000), "created_at": "2026-01-01T00:00:00Z"
    });
    let nul = serde_json::json!({
        "type": "post", "id": "nul", "platform": "twitter", "author": {"id": "a", "followers": 1},
        "text": "a\u{0}b", "created_at": "2026-01-01T00:00:00Z"
    });
    let entries = vec![
        event(text("{\"type\":\"post\",\"id\":".into())),
        event(text(wrong_types.to_string())),
        event(text(huge_event.to_string())),
        event(text(long_text.to_string())),
        vec![
            ("payload".to_string(), text(post("missing", 0))),
            ("junk".to_string(), text("z".repeat(256 * 1024))),
        ],
        event(Value::Bytes(
            vec![0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x9f].into(),
        )),
        event(text("{\"type\":\"repost\",\"id\":\"r1\"}".into())),
        event(text(nul.to_string())),
        event(text("[1,2,3]".into())),
    ];
    assert_eq!(entries.len(), POISON_KINDS);
    entries
}

/// Appends one entry with raw fields, once; returns its id.
async fn xadd_raw(redis: &Client, stream: &str, fields: Vec<(String, Value)>) -> String {
    redis
        .xadd(stream, false, None::<()>, "*", fields)
        .await
        .expect("xadd poison")
}

/// A private PostgreSQL and Redis, a test environment on them and the Pulse processes.
struct Cluster {
    // Dropped first: the processes, then the environment (drops its database), then servers.
    processes: Vec<PulseProcess>,
    env: TestEnv,
    redis: Client,
    redis_server: Arc<Mutex<PrivateRedis>>,
    postgres: Arc<PrivatePostgres>,
    /// The consumer name of each process, in the order of `processes`.
    consumers: Vec<String>,
    /// Processes started so far (names each one's consumer).
    started: usize,
    /// Logs of processes killed along the way.
    old_logs: Vec<String>,
}

impl Cluster {
    async fn start(processes: usize) -> Cluster {
        let postgres = PrivatePostgres::start();
        let redis_server = PrivateRedis::start();
        let env = TestEnv::on(postgres.url(), redis_server.url()).await;
        let redis = env.redis().await;
        let mut cluster = Cluster {
            processes: Vec::new(),
            env,
            redis,
            redis_server: Arc::new(Mutex::new(redis_server)),
            postgres: Arc::new(postgres),
            consumers: Vec::new(),
            started: 0,
            old_logs: Vec::new(),
        };
        for _ in 0..processes {
            let (vars, consumer) = cluster.next_process();
            cluster.processes.push(PulseProcess::start(&vars));
            cluster.consumers.push(consumer);
        }
        cluster
    }

    /// The environment of the next process, under a consumer name of its own.
    fn next_process(&mut self) -> (Vec<(String, String)>, String) {
        let consumer = format!("chaos-{}", self.started);
        self.started += 1;
        let mut vars = self.env.env();
        vars.push(("PULSE_REDIS__CONSUMER".into(), consumer.clone()));
        // A process stopped inside a transaction holds the others up until its session is
        // ended: sooner than the stop lasts, as the claim timeout is.
        vars.push((
            "PULSE_DATABASE__IDLE_TRANSACTION_TIMEOUT_MS".into(),
            CLAIM_IDLE.as_millis().to_string(),
        ));
        (vars, consumer)
    }

    /// Entries pending on `consumer`.
    async fn held_by(&self, consumer: &str) -> usize {
        let rows: Result<Value, Error> = self
            .redis
            .xpending(
                &self.env.stream,
                &self.env.group,
                ("-", "+", 100_000, consumer),
            )
            .await;
        match rows {
            Ok(Value::Array(rows)) => rows.len(),
            _ => 0,
        }
    }

    /// Returns once `consumer` holds at least one entry, or after a few seconds of trying (a
    /// kill then lands between batches, which the scenario also handles).
    async fn wait_until_holding(&self, consumer: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.held_by(consumer).await == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn logs(&self) -> String {
        let mut all = self.old_logs.clone();
        all.extend(self.processes.iter().map(PulseProcess::log_text));
        all.join("\n")
    }

    /// Waits until `n` posts are stored (the processes are up and consuming).
    async fn warm_up(&self, n: i64) {
        assert!(
            self.env.stored(n, Duration::from_secs(60)).await,
            "the processes store posts\n{}",
            self.logs()
        );
    }

    /// The id of the newest entry in the stream.
    async fn last_id(&self) -> EntryId {
        loop {
            let newest: Result<Value, Error> = self
                .redis
                .xrevrange(&self.env.stream, "+", "-", Some(1))
                .await;
            if let Ok(Value::Array(entries)) = newest {
                let id = entries.first().and_then(|e| match e {
                    Value::Array(parts) => parts.first().and_then(value_string),
                    _ => None,
                });
                return id.as_deref().and_then(parse_id).unwrap_or((0, 0));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The oldest entry the group has not acknowledged: the first pending one or the first not
    /// yet delivered, whichever is older. `Ok(None)`: everything is acknowledged.
    async fn oldest_unacknowledged(&self) -> Result<Option<EntryId>, Error> {
        let stream = self.env.stream.as_str();
        let summary: Value = self.redis.xpending(stream, "pulse", ()).await?;
        let pending = match &summary {
            Value::Array(parts) if parts.len() >= 2 => parts
                .get(1)
                .and_then(value_string)
                .and_then(|id| parse_id(&id)),
            _ => None,
        };
        let mut settings = pulse::config::Settings::default();
        settings.redis.stream = stream.to_string();
        settings.redis.group = self.env.group.clone();
        let stats = pulse::streams::group::group_stats(&self.redis, &settings).await?;
        let undelivered = if stats.lag == Some(0) {
            None
        } else {
            let after = format!("({}", stats.last_delivered_id.as_deref().unwrap_or("0-0"));
            let first: Value = self.redis.xrange(stream, after, "+", Some(1)).await?;
            match first {
                Value::Array(entries) => entries.first().and_then(|e| match e {
                    Value::Array(parts) => parts
                        .first()
                        .and_then(value_string)
                        .and_then(|id| parse_id(&id)),
                    _ => None,
                }),
                _ => None,
            }
        };
        Ok(match (pending, undelivered) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Time from `fault` to the last moment the group was behind (see the module docs),
    /// once it has stayed caught up for [`SETTLE`]; zero if it never fell behind, None if it
    /// did not settle within [`RECOVERY_PATIENCE`]. A Redis that does not answer, or answers
    /// only after [`UNRESPONSIVE`] (its client queues commands while it reconnects), counts as
    /// behind.
    async fn time_to_recover(&self, fault: Instant, before: EntryId) -> Option<Duration> {
        let mut last_behind: Option<Instant> = None;
        while fault.elapsed() < RECOVERY_PATIENCE {
            let asked = Instant::now();
            let oldest = self.oldest_unacknowledged().await;
            let now_ms = chrono::Utc::now().timestamp_millis();
            let behind = match oldest {
                _ if asked.elapsed() >= UNRESPONSIVE => true,
                Ok(None) => false,
                Ok(Some(id)) => id <= before || now_ms - id.0 >= CAUGHT_UP.as_millis() as i64,
                Err(_) => true,
            };
            if behind {
                last_behind = Some(Instant::now());
            }
            if last_behind.unwrap_or(fault).elapsed() >= SETTLE {
                return Some(last_behind.map_or(Duration::ZERO, |t| t - fault));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Sum of a counter or gauge over the live processes' `/metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let mut total = 0.0;
        for p in &self.processes {
            total += metric(p, name).await;
        }
        total
    }
}

/// The end state of a scenario.
#[derive(Debug)]
struct Outcome {
    appended: usize,
    stored: i64,
    lost: i64,
    duplicated: i64,
    rollup_mismatches: i64,
    dead_letters: usize,
    drain: Duration,
}

/// Stops the load, waits for the group to drain, and checks every promise.
async fn finish(cluster: &Cluster, producer: Producer, name: &str) -> Outcome {
    let (produced, prefix) = producer.finish().await;
    let env = &cluster.env;
    let stopped = Instant::now();
    let mut settings = pulse::config::Settings::default();
    settings.redis.stream = env.stream.clone();
    settings.redis.group = env.group.clone();
    let drained = wait_until(DRAIN_PATIENCE, || async {
        matches!(
            pulse::streams::group::group_stats(&cluster.redis, &settings).await,
            Ok(s) if s.lag == Some(0) && s.pending == 0
        )
    })
    .await;
    let drain = stopped.elapsed();
    assert!(
        drained,
        "{name}: the group drains once the load stops\n{}",
        cluster.logs()
    );

    let pg = env.pg().await;
    // A like stored while a concurrent batch was storing its post sees no post and is held;
    // that batch cannot see it either. The settling pass (every 2 s, in every process)
    // releases it and counts it, so the promise holds once that pass has run.
    let settled = wait_until(SETTLE_PATIENCE, || async {
        pg.query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM engagements e JOIN posts s ON s.id = e.post_id
                                WHERE e.held)",
            &[],
        )
        .await
        .is_ok_and(|row| row.get::<_, bool>(0))
    })
    .await;
    assert!(
        settled,
        "{name}: held likes whose post is stored are released\n{}",
        cluster.logs()
    );
    let expected: Vec<String> = (0..produced.posts)
        .map(|n| format!("{prefix}-{n}"))
        .collect();
    let row = pg
        .query_one(
            "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id = ANY($1)) FROM posts",
            &[&expected],
        )
        .await
        .unwrap();
    let (stored, distinct, found): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    // Rollups: every (minute, dimension, key) must count exactly the stored posts.
    let rollup_mismatches: i64 = pg
        .scalar(
            "WITH p AS (
                 SELECT date_trunc('minute', created_at) AS minute, d.dimension, d.key,
                        count(*) AS posts
                 FROM posts CROSS JOIN LATERAL (VALUES
                     ('overall', ''), ('platform', platform), ('city', city),
                     ('country', country), ('product', product), ('channel', channel),
                     ('language', COALESCE(lang, 'und')), ('support', language_support))
                     AS d(dimension, key)
                 WHERE d.key IS NOT NULL
                   AND (language_support <> 'unsupported' OR d.dimension IN ('language', 'support'))
                 GROUP BY 1, 2, 3),
             r AS (SELECT minute, dimension, key, posts FROM metric_rollups WHERE posts <> 0)
             SELECT count(*) FROM r FULL JOIN p USING (minute, dimension, key)
             WHERE r.posts IS DISTINCT FROM p.posts",
            &[],
        )
        .await;
    let rollup_total: i64 = pg
        .scalar(
            // Every post counts once by support class (unsupported ones are not in `overall`).
            "SELECT COALESCE(sum(posts), 0)::int8 FROM metric_rollups WHERE dimension = 'support'",
            &[],
        )
        .await;
    let row = pg
        .query_one(
            "SELECT count(*), COALESCE(sum(count), 0)::int8,
                    (SELECT COALESCE(sum(likes), 0)::int8 FROM metric_rollups
                     WHERE dimension = 'overall')
             FROM engagements WHERE kind = 'like'",
            &[],
        )
        .await
        .unwrap();
    let (likes, like_total, rollup_likes): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));

    let dead: Value = cluster
        .redis
        .xrange(format!("{}:dead", env.stream), "-", "+", None)
        .await
        .unwrap();
    let mut dead_ids: Vec<String> = match dead {
        Value::Array(entries) => entries
            .into_iter()
            .filter_map(|e| {
                let Value::Array(parts) = e else { return None };
                let Some(Value::Array(fields)) = parts.get(1) else {
                    return None;
                };
                fields
                    .chunks(2)
                    .find(|kv| value_string(&kv[0]).as_deref() == Some("dead_entry_id"))
                    .and_then(|kv| value_string(&kv[1]))
            })
            .collect(),
        _ => Vec::new(),
    };
    let pending = env.pending(&cluster.redis).await;

    let outcome = Outcome {
        appended: produced.posts,
        stored,
        lost: produced.posts as i64 - found,
        duplicated: (stored - distinct) + (rollup_total - stored).max(0),
        rollup_mismatches,
        dead_letters: dead_ids.len(),
        drain,
    };
    println!(
        "chaos {name}: appended {} posts, stored {}, lost {}, duplicated {}, rollup mismatches {}, \
         likes {likes}/{} ({like_total} counted, rollup {rollup_likes}), dead letters {} of {} poison; drained {:.1} s after the load stopped",
        outcome.appended,
        outcome.stored,
        outcome.lost,
        outcome.duplicated,
        outcome.rollup_mismatches,
        produced.likes,
        outcome.dead_letters,
        produced.poison.len(),
        outcome.drain.as_secs_f64(),
    );

    assert_eq!(pending, 0, "{name}: nothing pending");
    assert_eq!(
        outcome.lost,
        0,
        "{name}: every post stored\n{}",
        cluster.logs()
    );
    assert_eq!(stored, produced.posts as i64, "{name}: nothing else stored");
    assert_eq!(stored, distinct, "{name}: each post once");
    assert_eq!(rollup_total, stored, "{name}: rollups count each post once");
    assert_eq!(rollup_mismatches, 0, "{name}: every minute and key adds up");
    assert_eq!(
        likes, produced.likes as i64,
        "{name}: every like stored once"
    );
    assert_eq!(like_total, produced.like_total, "{name}: like counts");
    assert_eq!(rollup_likes, like_total, "{name}: likes counted once");
    let unique_dead: HashSet<&String> = dead_ids.iter().collect();
    assert_eq!(
        unique_dead.len(),
        dead_ids.len(),
        "{name}: each poison entry dead-lettered once: {dead_ids:?}"
    );
    dead_ids.sort();
    let mut poison = produced.poison.clone();
    poison.sort();
    assert_eq!(
        dead_ids, poison,
        "{name}: dead letters are exactly the poison entries"
    );
    outcome
}

fn report(name: &str, recoveries: &[Option<Duration>]) {
    let figures: Vec<String> = recoveries
        .iter()
        .map(|r| match r {
            Some(d) => format!("{:.1} s", d.as_secs_f64()),
            None => format!("not within {} s", RECOVERY_PATIENCE.as_secs()),
        })
        .collect();
    println!("chaos {name}: time to recover: {}", figures.join(", "));
}

/// Three processes warmed up under a producer's steady load (with poison entries trickled in
/// when `poison`), then left two seconds to settle.
async fn loaded_cluster(poison: bool) -> (Cluster, Producer) {
    let cluster = Cluster::start(3).await;
    let producer = Producer::start(&cluster.env, poison);
    cluster.warm_up(RATE as i64).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    (cluster, producer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_one_killed_five_times() {
    let mut cluster = Cluster::start(3).await;
    let producer = Producer::start(&cluster.env, false);
    cluster.warm_up(RATE as i64).await;
    let mut recoveries = Vec::new();
    let mut held = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let victim = cluster.processes.pop().expect("a process");
        let consumer = cluster.consumers.pop().expect("its consumer");
        let before = cluster.last_id().await;
        // Aim for a moment when the victim holds entries, so the kill leaves work to claim.
        cluster.wait_until_holding(&consumer).await;
        let fault = Instant::now();
        victim.signal(libc::SIGKILL);
        held.push(cluster.held_by(&consumer).await);
        cluster.old_logs.push(victim.log_text());
        drop(victim);
        // Restarted at once, as a supervisor would; it joins under a new consumer name.
        let (vars, consumer) = cluster.next_process();
        let restart = tokio::task::spawn_blocking(move || PulseProcess::start(&vars));
        recoveries.push(cluster.time_to_recover(fault, before).await);
        cluster.processes.push(restart.await.expect("restart"));
        cluster.consumers.push(consumer);
    }
    println!("chaos kill: entries held by the killed process: {held:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    report("kill", &recoveries);
    // A kill can land between batches, with nothing held; entries it did leave are claimed.
    if held.iter().any(|&n| n > 0) {
        assert!(
            cluster
                .logs()
                .contains("claimed entries left by another consumer"),
            "the killed processes' entries were claimed"
        );
    }
    finish(&cluster, producer, "kill").await;
}

/// Restarts one of the servers under load: `restart` starts the restart on a blocking
/// thread while the recovery is measured; `felt` are the log lines any of which shows the
/// processes noticed the outage (which stage meets it first depends on where each process
/// was when the server went away).
async fn restart_under_load(
    name: &str,
    restart: impl FnOnce(&Cluster) -> tokio::task::JoinHandle<()>,
    felt: &[&str],
) {
    let (cluster, producer) = loaded_cluster(false).await;
    let before = cluster.last_id().await;
    let fault = Instant::now();
    let restarting = restart(&cluster);
    let recovery = cluster.time_to_recover(fault, before).await;
    restarting.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    report(name, &[recovery]);
    let logs = cluster.logs();
    assert!(
        felt.iter().any(|line| logs.contains(line)),
        "{name}: the restart was felt (one of {felt:?} logged)"
    );
    finish(&cluster, producer, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load() {
    restart_under_load(
        "redis restart",
        |cluster| {
            let server = cluster.redis_server.clone();
            tokio::task::spawn_blocking(move || {
                server.lock().unwrap().restart_after(Duration::from_secs(2))
            })
        },
        &[
            "stream read failed",
            "acknowledging failed",
            "claiming stale entries failed",
            "refreshing held entries failed",
            "fan-out cannot reach Redis",
            "fan-out subscriber lost Redis",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    restart_under_load(
        "postgres restart",
        |cluster| {
            // Down for several claim timeouts: entries the processes are retrying stay theirs.
            let server = cluster.postgres.clone();
            tokio::task::spawn_blocking(move || server.restart_after(CLAIM_IDLE * 6))
        },
        &["store unavailable"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_entries_mixed_into_the_load() {
    let (cluster, producer) = loaded_cluster(true).await;
    // A burst of every kind at once, on top of the trickle the producer mixes in.
    let before = cluster.last_id().await;
    let fault = Instant::now();
    let mut burst = Vec::new();
    for _ in 0..5 {
        for entry in poison_entries() {
            burst.push(xadd_raw(&cluster.redis, &cluster.env.stream, entry).await);
        }
    }
    let recovery = cluster.time_to_recover(fault, before).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    report("poison", &[recovery]);
    let (stop, task, prefix) = (producer.stop, producer.task, producer.prefix);
    let with_burst = tokio::spawn(async move {
        let mut produced = task.await.expect("producer");
        produced.poison.extend(burst);
        produced
    });
    let producer = Producer {
        stop,
        task: with_burst,
        prefix,
    };
    let outcome = finish(&cluster, producer, "poison").await;
    assert!(outcome.dead_letters >= 5 * POISON_KINDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_process_is_claimed_from_and_resumes_without_duplicates() {
    let (cluster, producer) = loaded_cluster(false).await;
    let victim = &cluster.processes[2];
    let acked_before = metric(victim, "pulse_ingest_entries_acked_total").await;
    let before = cluster.last_id().await;
    cluster.wait_until_holding(&cluster.consumers[2]).await;
    let fault = Instant::now();
    victim.signal(libc::SIGSTOP);
    // Stopped well past the claim timeout, then resumed with whatever it still held, while
    // the recovery is being measured.
    let pid = victim.child.id() as i32;
    let resume = tokio::spawn(async move {
        tokio::time::sleep(CLAIM_IDLE * 4).await;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    });
    // What it holds once its last read is served, before anything can be claimed.
    let held = async {
        tokio::time::sleep(CLAIM_IDLE / 2).await;
        cluster.held_by(&cluster.consumers[2]).await
    };
    let (recovery, held) = tokio::join!(cluster.time_to_recover(fault, before), held);
    resume.await.unwrap();
    let resumed = Instant::now();
    report("stop", &[recovery]);
    let claimed = cluster.metric("pulse_ingest_entries_claimed_total").await;
    println!("chaos stop: the stopped process held {held} entries; {claimed} claimed in all");
    if held > 0 {
        assert!(claimed > 0.0, "the stopped process's entries were claimed");
    }
    assert!(
        wait_until(Duration::from_secs(60), || async {
            metric(victim, "pulse_ingest_entries_acked_total").await > acked_before
        })
        .await,
        "the resumed process acknowledges again ({:.1} s after SIGCONT)",
        resumed.elapsed().as_secs_f64()
    );
    finish(&cluster, producer, "stop").await;
}
