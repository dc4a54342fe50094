//! The machine's ceilings, each from outside Pulse's code: pipelined XADD, XREADGROUP+XACK,
//! the analyzer alone, PostgreSQL's `COPY` of the same posts, and Pulse's batch write beside
//! them.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use fred::prelude::*;
use fred::types::streams::XID;
use serde::Serialize;

use super::copy_ceiling;
use crate::actors::messages::{AnalyzedBatch, AnalyzedPost};
use crate::analysis;
use crate::config::Settings;
use crate::models::Event;
use crate::sources::demo::{self as producer, ProduceOptions};

/// Entries per raw pipeline, read and insert batch (the same as Pulse's default read batch).
pub(super) const RAW_BATCH: usize = 500;
/// Concurrent writers of the raw insert ceiling (Pulse itself commits several batches at once).
pub(super) const RAW_INSERT_WRITERS: usize = 4;

/// The machine's raw ceilings, in entries, posts or rows per second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ceilings {
    pub xadd_per_sec: f64,
    pub xreadgroup_xack_per_sec: f64,
    pub analyzer_posts_per_sec: f64,
    pub insert_rows_per_sec: f64,
    pub copy_rows_per_sec: f64,
}

/// Measures the raw ceilings with `--events` generated posts: pipelined XADD,
/// XREADGROUP+XACK, the lexicon on as many threads as Pulse would use, and batched inserts with
/// Pulse's own statement into the tables of the run's database (emptied afterwards).
pub(crate) async fn ceilings(run: &super::Run) -> anyhow::Result<Ceilings> {
    let (settings, db_url, redis, run_id, n) =
        (&run.lexicon, &run.db_url, &run.redis, &run.id, run.events);
    eprintln!("preparing {n} posts");
    let events = generate_posts(n, &format!("raw-{run_id}-"));
    let raw_stream = format!("pulse:bench:{run_id}:raw");
    let mut c = Ceilings {
        xadd_per_sec: raw_xadd(redis, &raw_stream, &events).await?,
        ..Default::default()
    };
    eprintln!("raw XADD: {:.0}/s", c.xadd_per_sec);
    c.xreadgroup_xack_per_sec = raw_read_ack(redis, &raw_stream, n).await?;
    eprintln!("raw XREADGROUP+XACK: {:.0}/s", c.xreadgroup_xack_per_sec);
    let (analyzed, rate) = analyze_all(settings, &events)?;
    c.analyzer_posts_per_sec = rate;
    eprintln!("raw analyzer: {:.0}/s", c.analyzer_posts_per_sec);
    c.copy_rows_per_sec = copy_ceiling::copy_rows_per_sec(db_url, &analyzed).await?;
    eprintln!("COPY: {:.0}/s", c.copy_rows_per_sec);
    c.insert_rows_per_sec = raw_insert(db_url, &raw_stream, analyzed).await?;
    eprintln!("raw insert: {:.0}/s", c.insert_rows_per_sec);
    let _: i64 = redis.del(&raw_stream).await?;
    Ok(c)
}

pub(crate) fn generate_posts(n: u64, prefix: &str) -> Vec<String> {
    generate_events(n, prefix, false)
}

/// `n` events of the generator: posts only, or posts with the likes, shares and comments the
/// generator gives them.
pub(crate) fn generate_events(n: u64, prefix: &str, engagements: bool) -> Vec<String> {
    let mut generator = producer::generator(&ProduceOptions {
        rate: 1_000.0,
        total: None,
        duration: None,
        seed: 7,
        engagements,
        id_prefix: prefix.to_string(),
        scenarios: false,
    });
    (0..n)
        .map(|_| serde_json::to_string(&generator.next_event()).expect("events serialise"))
        .collect()
}

pub(crate) async fn raw_xadd(
    redis: &Client,
    stream: &str,
    events: &[String],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    for chunk in events.chunks(RAW_BATCH) {
        crate::streams::producer::xadd_events(redis, stream, chunk).await?;
    }
    Ok(events.len() as f64 / started.elapsed().as_secs_f64())
}

async fn raw_read_ack(redis: &Client, stream: &str, n: u64) -> anyhow::Result<f64> {
    crate::streams::group::ensure_group(redis, stream, "bench").await?;
    let started = Instant::now();
    let mut done = 0u64;
    while done < n {
        let reply: Value = redis
            .xreadgroup(
                "bench",
                "raw",
                Some(RAW_BATCH as u64),
                None,
                false,
                stream,
                XID::NewInGroup,
            )
            .await?;
        let entries = crate::streams::reply::parse_read_reply(reply);
        if entries.is_empty() {
            break;
        }
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        done += ids.len() as u64;
        let _: i64 = redis.xack(stream, "bench", ids).await?;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// Analyses every post with the configured backend on as many threads as the pool would use.
pub(super) fn analyze_all(
    settings: &Settings,
    events: &[String],
) -> anyhow::Result<(Vec<AnalyzedPost>, f64)> {
    let posts: Vec<crate::models::Post> = events
        .iter()
        .filter_map(|json| match Event::from_slice(json.as_bytes()) {
            Ok(Event::Post(p)) => Some(p),
            _ => None,
        })
        .collect();
    let threads = Settings::threads_or_cores(settings.analyzer.workers);
    let chunk = posts.len().div_ceil(threads).max(1);
    let started = Instant::now();
    let results: Vec<Vec<AnalyzedPost>> = std::thread::scope(|scope| {
        let handles: Vec<_> = posts
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut analyzer =
                        analysis::build(settings.analyzer.backend, &settings.analyzer)
                            .expect("backend loads");
                    part.chunks(RAW_BATCH)
                        .flat_map(|batch| {
                            let texts: Vec<&str> = batch.iter().map(|p| p.text.as_str()).collect();
                            let analyses = analyzer.analyze_batch(&texts);
                            batch
                                .iter()
                                .zip(analyses)
                                .map(|(post, analysis)| {
                                    let mut p = AnalyzedPost {
                                        entry_id: "0-0".into(),
                                        producer: crate::models::producer::STREAM.into(),
                                        post: post.clone(),
                                        analysis,
                                        story_id: None,
                                        topics: Vec::new(),
                                        filtered_topics: Vec::new(),
                                        search: Vec::new(),
                                    };
                                    p.search = crate::search::vector::encode(
                                        &crate::topics::PostFields::of(&p),
                                    );
                                    p
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("analyzer thread"))
            .collect()
    });
    let rate = posts.len() as f64 / started.elapsed().as_secs_f64();
    Ok((results.into_iter().flatten().collect(), rate))
}

async fn raw_insert(db_url: &str, stream: &str, posts: Vec<AnalyzedPost>) -> anyhow::Result<f64> {
    let pool = crate::db::pool(db_url, RAW_INSERT_WRITERS)?;
    let n = posts.len();
    let batches: Vec<Arc<AnalyzedBatch>> = posts
        .chunks(RAW_BATCH)
        .map(|chunk| {
            Arc::new(AnalyzedBatch {
                posts: chunk.to_vec(),
                ..Default::default()
            })
        })
        .collect();
    let queue = Arc::new(Mutex::new(batches));
    let metrics = crate::config::MetricsSettings::default();
    let admission = Arc::new(crate::db::rollup_keys::KeyAdmission::new(
        metrics.max_keys_per_dimension,
    ));
    let started = Instant::now();
    let writers: Vec<_> = (0..RAW_INSERT_WRITERS)
        .map(|_| {
            let (pool, queue, stream) = (pool.clone(), queue.clone(), stream.to_string());
            let (high_churn, admission) = (metrics.high_churn_threshold, admission.clone());
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some(batch) = next else {
                        return anyhow::Ok(());
                    };
                    crate::actors::store::write(
                        &pool,
                        &crate::db::batch::WriteOptions {
                            stream: &stream,
                            high_churn,
                            admission: &admission,
                            trust: &Default::default(),
                        },
                        &batch,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let client = pool.get().await?;
    client.batch_execute("TRUNCATE posts").await?;
    Ok(rate)
}
