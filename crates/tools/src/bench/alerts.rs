//! The alert part of `pulse bench`: how long from the first post of a negativity spike to the
//! `alert:negativity` message on a WebSocket, while the stream carries 2,000 posts/s. A
//! `pulse serve` child evaluates rules every `alerts.evaluate_every_secs`; each trial adds a
//! burst of angry posts about a product of its own (watched by its own rule) into the
//! background traffic, and times it from the XADD of the burst's first post.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::websocket::Server;
use crate::sources::demo as producer;

/// Options of the alert benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertBenchArgs {
    /// Background posts per second while the spikes arrive.
    #[arg(long, default_value_t = 2_000.0)]
    pub alert_rate: f64,
    /// Rule evaluation interval of the server, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub alert_tick_secs: f64,
    /// Spikes timed.
    #[arg(long, default_value_t = 5)]
    pub alert_trials: usize,
}

/// Figures of the alert run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AlertReport {
    pub background_rate: f64,
    pub tick_secs: f64,
    pub trials: usize,
    pub latencies_ms: Vec<u64>,
    pub median_ms: u64,
    pub max_ms: u64,
    pub target_ms: u64,
}

/// Posts in one spike, sent over about half a second.
const SPIKE_POSTS: usize = 60;
/// The rule's minimum volume: the alert can fire once this many spike posts are stored.
const MIN_VOLUME: i64 = 40;

/// Runs the trials against a fresh server.
pub async fn run(run: &super::Run, args: &AlertBenchArgs) -> anyhow::Result<AlertReport> {
    let (redis, run_id) = (&run.redis, &run.id);
    let stream = format!("pulse:bench:{run_id}:alerts");
    let tick = format!("{}", args.alert_tick_secs);
    let server = Server::start(
        run,
        &stream,
        &[
            ("PULSE_ALERTS__ENABLED", "true"),
            ("PULSE_ALERTS__EVALUATE_EVERY_SECS", &tick),
        ],
    )?;
    let base = format!("http://{}", server.address);
    let http = reqwest::Client::new();
    // Only the trials' rules: the default rules would fire on the background traffic too.
    let rules: Value = http
        .get(format!("{base}/api/v1/alert-rules"))
        .send()
        .await?
        .json()
        .await?;
    for rule in rules["items"].as_array().into_iter().flatten() {
        if let Some(id) = rule["id"].as_i64() {
            http.post(format!("{base}/api/v1/alert-rules/{id}/disable"))
                .send()
                .await?;
        }
    }
    let products: Vec<String> = (0..args.alert_trials)
        .map(|i| format!("spike-{run_id}-{i}"))
        .collect();
    for product in &products {
        let created = http
            .post(format!("{base}/api/v1/alert-rules"))
            .json(&json!({
                "name": format!("negativity of {product}"), "kind": "negativity",
                "dimension": "product", "key": product, "window_minutes": 1,
                "threshold": 0.5, "min_volume": MIN_VOLUME, "cooldown_secs": 3600,
            }))
            .send()
            .await?;
        anyhow::ensure!(
            created.status().is_success(),
            "rule not created: {}",
            created.text().await?
        );
    }

    let tcp = tokio::net::TcpStream::connect(server.address).await?;
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://{}/ws", server.address), tcp).await?;
    ws.send(Message::text(r#"{"type":"subscribe","topics":["alerts"]}"#))
        .await?;

    // Background traffic for the whole run.
    let trial_secs = args.alert_tick_secs + 4.0;
    let total_secs = 3.0 + trial_secs * args.alert_trials as f64 + 5.0;
    let background = {
        let (redis, stream) = (redis.clone(), stream.clone());
        let duration = Some(Duration::from_secs_f64(total_secs));
        let options = super::posts_only(args.alert_rate, duration, 13, format!("bg-{run_id}-"));
        tokio::spawn(async move { producer::produce(&redis, &stream, options).await })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut report = AlertReport {
        tick_secs: args.alert_tick_secs,
        trials: args.alert_trials,
        target_ms: ((args.alert_tick_secs + 1.0) * 1000.0) as u64,
        ..Default::default()
    };
    for (trial, product) in products.iter().enumerate() {
        // Start at a random point of the evaluation tick.
        let offset = (trial as f64 * 0.37).fract() * args.alert_tick_secs;
        tokio::time::sleep(Duration::from_secs_f64(offset)).await;
        let started = Instant::now();
        let spike = send_spike(redis, &stream, product, run_id, trial);
        let wait = wait_for_alert(&mut ws, product);
        let (sent, fired) = tokio::join!(spike, wait);
        sent?;
        fired?;
        let ms = started.elapsed().as_millis() as u64;
        eprintln!("spike {trial}: alert after {ms} ms");
        report.latencies_ms.push(ms);
        tokio::time::sleep(Duration::from_secs_f64(
            (trial_secs - offset - ms as f64 / 1000.0).max(0.5),
        ))
        .await;
    }
    let sent = background.await.context("background producer")??;
    report.background_rate = sent.posts as f64 / sent.seconds;
    let mut sorted = report.latencies_ms.clone();
    sorted.sort_unstable();
    report.median_ms = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    report.max_ms = sorted.last().copied().unwrap_or(0);
    let _: i64 = fred::prelude::KeysInterface::del(redis, &stream).await?;
    drop(server);
    Ok(report)
}

/// Angry posts about `product`, spread over about half a second.
async fn send_spike(
    redis: &fred::clients::Client,
    stream: &str,
    product: &str,
    run_id: &str,
    trial: usize,
) -> anyhow::Result<()> {
    for i in 0..SPIKE_POSTS {
        let event = json!({
            "type": "post", "id": format!("spike-{run_id}-{trial}-{i}"), "platform": "twitter",
            "author": {"id": format!("angry-{i}"), "followers": 100},
            "text": "This is terrible, I hate it, worst update ever, absolutely awful",
            "created_at": chrono::Utc::now().to_rfc3339(), "product": product,
        })
        .to_string();
        crate::streams::producer::xadd_events(redis, stream, &[event]).await?;
        tokio::time::sleep(Duration::from_millis(8)).await;
    }
    Ok(())
}

/// Reads the socket until the alert for `product` arrives (60 s at most).
async fn wait_for_alert<S>(ws: &mut S, product: &str) -> anyhow::Result<()>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no alert within 60 s")?;
        let Some(frame) = frame else {
            anyhow::bail!("the WebSocket closed");
        };
        let Message::Text(text) = frame? else {
            continue;
        };
        let value: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        if value["type"] == "alert:negativity" && text.as_str().contains(product) {
            return Ok(());
        }
    }
}

/// The report as a Markdown table row set.
pub fn markdown(r: &AlertReport) -> String {
    format!(
        "| measure | result | target |\n|---|---|---|\n\
         | first post of a negativity spike → `alert:negativity` on a WebSocket, {trials} spikes in {rate:.0} posts/s of traffic, evaluation every {tick} s: median / max | {median} / {max} ms ({all:?}) | ≤ {target} ms (one tick + 1 s) |",
        trials = r.trials,
        rate = r.background_rate,
        tick = r.tick_secs,
        median = r.median_ms,
        max = r.max_ms,
        all = r.latencies_ms,
        target = r.target_ms,
    )
}
