//! `pulse bench --only sources`: how fast the sources feed the pipeline, in one run.
//!
//! - **Jetstream ceiling**: the Bluesky source alone, reading a local Jetstream stand-in that
//!   sends `--source-events` post messages as fast as the socket takes them, appending to a
//!   scratch stream: messages/s from the first byte to the last entry appended.
//! - **Jetstream end to end**: `pulse serve` (lexicon) with that source configured, from
//!   start to the last post committed, beside the pipeline's own end-to-end figure for as
//!   many posts XADDed up front: if the two are close, the source is not the bottleneck.
//! - **Import**: `pulse import` of a file of `--import-lines` JSON lines into a scratch stream
//!   with no backlog ceiling, beside raw pipelined XADD of the same events.

use std::io::Write;
use std::time::{Duration, Instant};

use fred::prelude::*;
use futures::SinkExt;
use serde::Serialize;

use super::{bench_settings, count_posts, generate_posts, raw_xadd, truncate, wait_drained};
use crate::config::{JetstreamSettings, SourceKind, SourceSettings};
use crate::models::Event;

#[derive(Debug, Clone, clap::Args)]
pub struct SourcesBenchArgs {
    /// Post messages the Jetstream stand-in sends.
    #[arg(long, default_value_t = 100_000)]
    pub source_events: u64,
    /// Lines of the file `pulse import` reads.
    #[arg(long, default_value_t = 1_000_000)]
    pub import_lines: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SourcesReport {
    pub machine: String,
    pub source_events: u64,
    pub jetstream_ceiling_per_sec: f64,
    pub jetstream_end_to_end_per_sec: f64,
    pub pipeline_end_to_end_per_sec: f64,
    pub import_lines: u64,
    pub import_lines_per_sec: f64,
    pub raw_xadd_per_sec: f64,
}

/// Jetstream post messages made from the synthetic world's posts (their texts and languages).
fn jetstream_messages(n: u64, run_id: &str) -> Vec<String> {
    let start_us = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
    generate_posts(n, &format!("js-{run_id}-"))
        .iter()
        .enumerate()
        .filter_map(
            |(i, json)| match serde_json::from_str::<Event>(json).ok()? {
                Event::Post(p) => Some(
                    serde_json::json!({
                        "did": format!("did:plc:{run_id}{:012}", i % 50_000),
                        "time_us": start_us + i as i64,
                        "kind": "commit",
                        "commit": {"rev": "3mptbypcq372f", "operation": "create",
                            "collection": "app.bsky.feed.post", "rkey": format!("{run_id}{i}"),
                            "cid": "bafyrei",
                            "record": {"$type": "app.bsky.feed.post",
                                "createdAt": p.created_at.to_rfc3339(),
                                "langs": [p.lang.unwrap_or_else(|| "en".into())], "text": p.text}}
                    })
                    .to_string(),
                ),
                _ => None,
            },
        )
        .collect()
}

/// A Jetstream stand-in on loopback sending `messages` to each connection, then holding it.
async fn stand_in(messages: std::sync::Arc<Vec<String>>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let messages = messages.clone();
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                for m in messages.iter() {
                    if socket
                        .feed(tokio_tungstenite::tungstenite::Message::text(m.clone()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = socket.flush().await;
                tokio::time::sleep(Duration::from_secs(3_600)).await;
            });
        }
    });
    Ok(format!("ws://{address}/subscribe"))
}

fn source(name: &str, endpoint: String) -> SourceSettings {
    SourceSettings {
        name: name.to_string(),
        kind: SourceKind::Jetstream(JetstreamSettings {
            endpoints: vec![endpoint],
            ..JetstreamSettings::default()
        }),
        query: None,
        topics: false,
        product: None,
        channel: None,
        max_backoff_secs: 1,
    }
}

/// Runs the part with the lexicon.
pub async fn run(run: &super::Run, args: &SourcesBenchArgs) -> anyhow::Result<SourcesReport> {
    let (settings, db_url, redis, run_id) = (&run.lexicon, &run.db_url, &run.redis, &run.id);
    let n = args.source_events;
    let mut report = SourcesReport {
        machine: super::machine_description(),
        source_events: n,
        import_lines: args.import_lines,
        ..Default::default()
    };
    let messages = std::sync::Arc::new(jetstream_messages(n, run_id));
    let n = messages.len() as u64;
    report.source_events = n;

    // The source alone.
    let endpoint = stand_in(messages.clone()).await?;
    let stream = format!("pulse:bench:{run_id}:source");
    let ctx = crate::sources::SourceContext::new(
        &source("bench-ceiling", endpoint.clone()),
        redis.clone(),
        &stream,
        None,
    );
    let started = Instant::now();
    let SourceKind::Jetstream(js) = source("x", endpoint.clone()).kind else {
        unreachable!("a Jetstream source")
    };
    let task = tokio::spawn(crate::sources::jetstream::run(ctx, js));
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let len: u64 = redis.xlen(&stream).await?;
        if len >= n {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the Jetstream source did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    report.jetstream_ceiling_per_sec = n as f64 / started.elapsed().as_secs_f64();
    task.abort();
    let _: i64 = redis.del(&stream).await?;
    eprintln!(
        "Jetstream source alone: {:.0}/s",
        report.jetstream_ceiling_per_sec
    );

    // The pipeline fed by XADD up front, then by the source.
    report.pipeline_end_to_end_per_sec = super::end_to_end(run, run_id, n).await?;
    eprintln!(
        "pipeline end to end: {:.0}/s",
        report.pipeline_end_to_end_per_sec
    );
    let stream = format!("pulse:bench:{run_id}:sourced");
    let mut sourced = bench_settings(settings, db_url, &stream);
    sourced.sources = vec![source("bench-e2e", stand_in(messages.clone()).await?)];
    let started = Instant::now();
    let app = crate::app::Application::build(sourced.clone(), crate::app::ServeOptions::default())
        .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while count_posts(db_url).await? < n as i64 {
        anyhow::ensure!(Instant::now() < deadline, "the sourced run did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.jetstream_end_to_end_per_sec = n as f64 / started.elapsed().as_secs_f64();
    wait_drained(redis, &sourced, "sourced run").await?;
    app.shutdown().await;
    let _: i64 = redis.del(&stream).await?;
    truncate(db_url).await?;
    eprintln!(
        "Jetstream to committed: {:.0}/s",
        report.jetstream_end_to_end_per_sec
    );

    // Import against raw XADD.
    let lines = args.import_lines;
    let dir = std::env::temp_dir().join(format!("pulse-bench-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("import.jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let mut written = 0u64;
        while written < lines {
            let chunk = (lines - written).min(100_000);
            for line in generate_posts(chunk, &format!("imp-{run_id}-{written}-")) {
                writeln!(out, "{line}")?;
            }
            written += chunk;
        }
    }
    let raw: Vec<String> = generate_posts(lines.min(100_000), &format!("xadd-{run_id}-"));
    let raw_stream = format!("pulse:bench:{run_id}:xadd");
    report.raw_xadd_per_sec = raw_xadd(redis, &raw_stream, &raw).await?;
    let _: i64 = redis.del(&raw_stream).await?;
    let import_stream = format!("pulse:bench:{run_id}:import");
    let mut import_settings = settings.clone();
    import_settings.redis.stream = import_stream.clone();
    let summary = crate::sources::import::run(
        &import_settings,
        crate::sources::import::ImportArgs {
            file: file.clone(),
            format: None,
            map: String::new(),
            platform: "other".into(),
            restart: true,
            complete: false,
            max_backlog: 0,
            max_backlog_secs: 0.0,
            quiet: true,
        },
    )
    .await?;
    anyhow::ensure!(
        summary.accepted == lines,
        "import accepted {} of {lines}",
        summary.accepted
    );
    report.import_lines_per_sec = summary.lines_per_sec;
    let _: i64 = redis.del(&import_stream).await?;
    let _: i64 = redis
        .del(crate::sources::import::position_key(&import_stream, &file))
        .await?;
    std::fs::remove_dir_all(&dir).ok();
    eprintln!("import: {:.0} lines/s", report.import_lines_per_sec);
    Ok(report)
}

pub fn markdown(r: &SourcesReport) -> String {
    format!(
        "Sources ({machine}):\n\n\
         | measure | per second |\n|---|---|\n\
         | Jetstream source alone, {n} posts from a local stand-in to the stream | {ceiling:.0} |\n\
         | Jetstream to committed posts (`pulse serve`, lexicon) | {sourced:.0} |\n\
         | the pipeline end to end, the same posts XADDed up front | {pipeline:.0} |\n\
         | sourced / pipeline | {ratio:.2} |\n\
         | `pulse import` of {lines} JSON lines | {import:.0} |\n\
         | raw pipelined XADD of the same events | {xadd:.0} |\n\
         | import / raw XADD | {import_ratio:.2} |\n",
        machine = r.machine,
        n = r.source_events,
        ceiling = r.jetstream_ceiling_per_sec,
        sourced = r.jetstream_end_to_end_per_sec,
        pipeline = r.pipeline_end_to_end_per_sec,
        ratio = r.jetstream_end_to_end_per_sec / r.pipeline_end_to_end_per_sec.max(1e-9),
        lines = r.import_lines,
        import = r.import_lines_per_sec,
        xadd = r.raw_xadd_per_sec,
        import_ratio = r.import_lines_per_sec / r.raw_xadd_per_sec.max(1e-9),
    )
}
