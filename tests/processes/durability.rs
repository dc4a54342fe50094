//! Nothing lost, nothing duplicated: a real `pulse` process killed, stopped, and its Redis
//! and PostgreSQL restarted under load.

use std::time::Duration;

use crate::common::jetstream;
use crate::common::*;

const BIG: usize = 50_000;

async fn dead_letters(env: &TestEnv, redis: &fred::prelude::Client) -> i64 {
    use fred::prelude::*;
    redis.xlen(format!("{}:dead", env.stream)).await.unwrap()
}

/// Starts a process with `vars`, kills it (SIGKILL) once `progress` posts are stored, and
/// returns how many were stored then, fewer than `total`.
async fn kill_once_stored(
    env: &TestEnv,
    vars: &[(String, String)],
    progress: i64,
    total: usize,
    timeout: Duration,
) -> i64 {
    let first = PulseProcess::start(vars);
    assert!(
        env.stored(progress, timeout).await,
        "the first process makes progress\n{}",
        first.log_text()
    );
    first.signal(libc::SIGKILL);
    drop(first);
    let at_kill = env.post_count().await;
    assert!(
        at_kill < total as i64,
        "killed mid-stream ({at_kill} stored)"
    );
    at_kill
}

/// Starts a second process with `vars` and asserts it stores all `total` posts and leaves
/// nothing pending.
async fn restart_and_work_off(
    env: &TestEnv,
    redis: &fred::prelude::Client,
    vars: &[(String, String)],
    total: usize,
    timeout: Duration,
) {
    let second = PulseProcess::start(vars);
    assert!(
        env.worked_off(redis, total as i64, timeout).await,
        "all {total} posts stored and nothing pending (stored {}, pending {})\n{}",
        env.post_count().await,
        env.pending(redis).await,
        second.log_text()
    );
}

/// A test's services and a Jetstream stand-in replaying `posts` posts, `pace` apart.
async fn replayed(
    posts: usize,
    pace: Duration,
) -> (TestEnv, fred::prelude::Client, jetstream::JetstreamStandIn) {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let standin = jetstream::JetstreamStandIn::replaying(posts, pace).await;
    (env, redis, standin)
}

/// `PULSE_SOURCES` naming one Jetstream source `bsky` on the stand-in, with `more` settings.
fn bsky_source(standin: &jetstream::JetstreamStandIn, more: &str) -> (String, String) {
    (
        "PULSE_SOURCES".into(),
        format!(
            r#"[{{kind="jetstream", name="bsky", endpoints=["{}"]{more}}}]"#,
            standin.endpoint
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_stream_loses_and_duplicates_nothing() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    xadd_posts(&redis, &env.stream, "kill", 0..BIG).await;

    kill_once_stored(&env, &env.env(), 5_000, BIG, Duration::from_secs(120)).await;
    restart_and_work_off(&env, &redis, &env.env(), BIG, Duration::from_secs(240)).await;
    assert_eq!(env.post_count().await, BIG as i64);
    assert_eq!(dead_letters(&env, &redis).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_while_its_source_replays_resumes_and_stores_each_post_once() {
    const POSTS: usize = 600;
    let (env, redis, standin) = replayed(POSTS, Duration::from_millis(5)).await;
    let mut vars = env.env();
    vars.push(bsky_source(&standin, ", max_backoff_secs=1"));

    kill_once_stored(&env, &vars, 150, POSTS, Duration::from_secs(60)).await;
    restart_and_work_off(&env, &redis, &vars, POSTS, Duration::from_secs(60)).await;
    // The restarted source resumed from its stored position, not from the start.
    let uris = standin.uris.lock().unwrap().clone();
    let resumed = uris.last().unwrap();
    assert!(uris.len() >= 2 && resumed.contains("cursor="), "{uris:?}");
    assert_eq!(dead_letters(&env, &redis).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulse_ingest_runs_one_source_alone_and_stops_on_sigterm() {
    use fred::prelude::*;
    const POSTS: usize = 200;
    let (env, redis, standin) = replayed(POSTS, Duration::ZERO).await;
    let metrics_port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(["ingest", "bsky", "--metrics-listen"])
        .arg(format!("127.0.0.1:{metrics_port}"))
        .envs(env.env())
        .envs([bsky_source(&standin, "")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn pulse ingest");
    let appended = wait_until(Duration::from_secs(30), || async {
        redis.xlen::<i64, _>(&env.stream).await.unwrap_or(0) >= POSTS as i64
    })
    .await;
    // The counter rises once the append's reply is back, a moment after the entries show.
    let counted = format!(r#"pulse_source_events_total{{source="bsky",event="post"}} {POSTS}"#);
    let read_metrics = || async {
        match reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await {
            Ok(res) => res.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    wait_until(Duration::from_secs(30), || async {
        read_metrics().await.contains(counted.as_str())
    })
    .await;
    let metrics = read_metrics().await;
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().expect("pulse ingest exits");
    assert!(appended, "the source appended every post to the stream");
    assert!(metrics.contains(&counted), "{metrics}");
    assert!(status.success(), "{status:?}");
    let cursor: Option<String> = redis
        .get(format!("{}:source:bsky:cursor", env.stream))
        .await
        .unwrap();
    let last = jetstream::post_message(POSTS - 1);
    let last_time = serde_json::from_str::<serde_json::Value>(&last).unwrap()["time_us"]
        .as_i64()
        .unwrap();
    assert_eq!(
        cursor,
        Some(last_time.to_string()),
        "the position is the last message's"
    );
    // One connection, read once: each message appended once.
    assert_eq!(
        redis.xlen::<i64, _>(&env.stream).await.unwrap(),
        POSTS as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_batches_and_exits_zero() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    xadd_posts(&redis, &env.stream, "term", 0..20_000).await;

    let mut process = PulseProcess::start(&env.env());
    assert!(env.stored(1_000, Duration::from_secs(120)).await);
    process.signal(libc::SIGTERM);
    assert_eq!(
        process.wait(Duration::from_secs(60)),
        Some(0),
        "{}",
        process.log_text()
    );
    assert!(process.log_text().contains("pipeline drained"));
    // Everything the process read was committed and acknowledged before it exited.
    assert_eq!(env.pending(&redis).await, 0);
    let stored = env.post_count().await;

    let _next = PulseProcess::start(&env.env());
    assert!(
        env.stored_exactly(20_000, Duration::from_secs(120)).await,
        "the rest is stored by the next process (had {stored})"
    );
    assert!(env.drained(&redis, Duration::from_secs(20)).await);
}

/// Starts Pulse on `env`, produces 20,000 posts in paced chunks, calls `restart` once 3,000 are
/// stored, and checks that every post is stored, nothing is pending or dead-lettered, and the
/// process logged one of `felt` (so the restart really hit it).
async fn survives_a_restart_under_load(
    env: &TestEnv,
    prefix: &'static str,
    restart: impl FnOnce(),
    felt: &[&str],
) {
    let redis = env.redis().await;
    let process = PulseProcess::start(&env.env());

    let producer_redis = env.redis().await;
    let stream = env.stream.clone();
    let producer = tokio::spawn(async move {
        for chunk in 0..40 {
            xadd_posts(
                &producer_redis,
                &stream,
                prefix,
                chunk * 500..(chunk + 1) * 500,
            )
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(env.stored(3_000, Duration::from_secs(120)).await);
    restart();
    producer.await.unwrap();

    assert!(
        env.worked_off(&redis, 20_000, Duration::from_secs(180))
            .await,
        "stored {} pending {}\n{}",
        env.post_count().await,
        env.pending(&redis).await,
        process.log_text()
    );
    assert_eq!(dead_letters(env, &redis).await, 0);
    let log = process.log_text();
    assert!(
        felt.iter().any(|sign| log.contains(sign)),
        "the restart was felt: one of {felt:?} logged\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_load_loses_nothing() {
    let mut private = PrivateRedis::start();
    let env = TestEnv::on(admin_url(), private.url()).await;
    // Whichever connection meets the outage first says so.
    let felt = [
        "stream read failed",
        "acknowledging failed",
        "claiming stale entries failed",
        "subscriber lost Redis",
        "cannot reach Redis",
    ];
    survives_a_restart_under_load(&env, "redis", || private.restart(), &felt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_nothing() {
    let private = PrivatePostgres::start();
    let env = TestEnv::on(private.url(), redis_url()).await;
    // Down for a moment: a restart with no gap can be absorbed by the pool's reconnects before
    // any batch meets it, and then the test would not show that the outage was survived.
    survives_a_restart_under_load(
        &env,
        "pg",
        || private.restart_after(Duration::from_millis(1500)),
        &["store unavailable"],
    )
    .await;
}

/// A private PostgreSQL (for the test to stop), an environment on it and the shared Redis, a
/// client of that Redis, and a process's variables with `var` set to `value`.
async fn on_private_postgres(
    var: &str,
    value: &str,
) -> (
    PrivatePostgres,
    TestEnv,
    fred::prelude::Client,
    Vec<(String, String)>,
) {
    let private = PrivatePostgres::start();
    let env = TestEnv::on(private.url(), redis_url()).await;
    let redis = env.redis().await;
    let mut vars = env.env();
    vars.push((var.into(), value.into()));
    (private, env, redis, vars)
}

/// Delivery counts of the group's pending entries, from XPENDING.
async fn delivery_counts(env: &TestEnv, redis: &fred::prelude::Client) -> Vec<i64> {
    use fred::prelude::*;
    let rows: Value = redis
        .xpending(&env.stream, &env.group, ("-", "+", 10_000))
        .await
        .unwrap();
    let Value::Array(rows) = rows else {
        return Vec::new();
    };
    rows.into_iter()
        .filter_map(|row| match row {
            Value::Array(cols) => cols.get(3).and_then(|c| c.as_i64()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_a_live_process_retries_through_an_outage_are_not_redelivered() {
    // A process retrying its batches while PostgreSQL is down still holds them: neither it nor
    // another process may claim them, so their delivery count stays 1 and none reaches
    // `max_deliveries` (which would dead-letter a valid post) however long the outage lasts.
    let (private, env, redis, vars) =
        on_private_postgres("PULSE_INGEST__MAX_DELIVERIES", "2").await;
    let first = PulseProcess::start(&vars);
    let second = PulseProcess::start(&vars);
    xadd_posts(&redis, &env.stream, "held", 0..100).await;
    assert!(env.stored_exactly(100, Duration::from_secs(60)).await);

    private.stop();
    assert!(
        tokio_postgres::connect(&env.database_url, tokio_postgres::NoTls)
            .await
            .is_err(),
        "PostgreSQL is down"
    );
    xadd_posts(&redis, &env.stream, "held", 100..400).await;
    // Generous: with the whole suite running beside it, reading 300 entries while every
    // batch retries against a dead database took over 30 s once.
    assert!(
        wait_until(Duration::from_secs(120), || async {
            env.pending(&redis).await == 300
        })
        .await,
        "both processes read the new entries and hold them"
    );
    // Many claim timeouts (1 s in tests) and claim rounds (every 0.5 s) pass.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let counts = delivery_counts(&env, &redis).await;
    assert_eq!(
        counts.len(),
        300,
        "still pending, dead letters {}\n{}\n{}",
        dead_letters(&env, &redis).await,
        first.log_text(),
        second.log_text()
    );
    assert!(
        counts.iter().all(|&c| c == 1),
        "held entries were redelivered: {counts:?}"
    );

    private.start_again();
    assert!(
        env.worked_off(&redis, 400, Duration::from_secs(120)).await,
        "stored {} pending {}\n{}\n{}",
        env.post_count().await,
        env.pending(&redis).await,
        first.log_text(),
        second.log_text()
    );
    assert_eq!(dead_letters(&env, &redis).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_holds_few_batches_and_leaves_the_rest_in_the_stream() {
    // While batches cannot commit, the reader stops at `max_batches_in_flight` batches: what
    // arrives meanwhile waits in the stream, to be read later in big batches, instead of
    // being read in slivers as credits come back (thousands of tiny batches, each paying a
    // statement, kept a backlog from ever being worked off at full speed).
    let (private, env, redis, vars) =
        on_private_postgres("PULSE_INGEST__MAX_BATCHES_IN_FLIGHT", "2").await;
    let process = PulseProcess::start(&vars);
    private.stop();
    // One entry at a time, so every read finds only a few.
    for i in 0..200 {
        env.xadd_post(&redis, &format!("trickle-{i}"), "Fine").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let batches = metric(&process, "pulse_ingest_in_flight_batches").await;
    let entries = metric(&process, "pulse_ingest_in_flight_entries").await;
    assert!(batches <= 2.0, "{batches} batches in flight");
    assert!(
        entries < 200.0,
        "{entries} entries read while nothing commits"
    );
    let lag = pulse::streams::group::group_stats(&redis, &env.group_settings())
        .await
        .unwrap()
        .lag;
    assert!(lag.unwrap_or(0) > 0, "the rest waits in the stream");

    private.start_again();
    assert!(
        env.worked_off(&redis, 200, Duration::from_secs(120)).await,
        "stored {}\n{}",
        env.post_count().await,
        process.log_text()
    );
    assert_eq!(dead_letters(&env, &redis).await, 0);
}

/// A process paused inside a transaction (stopped, swapped out, starved) holds that
/// transaction's locks; every other process writing the same rows would wait on it. Our
/// sessions, the pipeline's and the API's, are ended by PostgreSQL once idle in a transaction
/// for `database.idle_transaction_timeout_ms`, which releases the locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_paused_inside_a_transaction_is_ended_and_releases_its_locks() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.database.idle_transaction_timeout_ms = 500;
    let lock_key: i64 = rand::random::<i32>().into();
    let other = env.pg().await;
    let pools = [
        (
            "pipeline",
            pulse::db::pipeline_pool(&settings.database).unwrap(),
        ),
        ("api", pulse::db::api_pool(&settings.database).unwrap()),
    ];
    for (name, pool) in pools {
        let mut paused = pool.get().await.unwrap();
        let tx = paused.transaction().await.unwrap();
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key])
            .await
            .unwrap();
        // Another session wants the same lock while this one pauses between statements.
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            other.execute("SELECT pg_advisory_lock($1)", &[&lock_key]),
        )
        .await;
        assert!(
            matches!(waited, Ok(Ok(_))),
            "the {name} session's lock was released: {waited:?}"
        );
        other
            .execute("SELECT pg_advisory_unlock($1)", &[&lock_key])
            .await
            .unwrap();
        assert!(
            tx.execute("SELECT 1", &[]).await.is_err(),
            "the paused {name} session was ended"
        );
    }
    // A transaction that is not paused keeps its session.
    let pool = pulse::db::pipeline_pool(&settings.database).unwrap();
    let mut busy = pool.get().await.unwrap();
    let tx = busy.transaction().await.unwrap();
    tx.execute("SELECT pg_sleep(1)", &[]).await.unwrap();
    tx.commit().await.unwrap();
}
