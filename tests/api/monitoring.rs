//! The operations kit against a running Pulse: every metric the Grafana dashboard and the
//! Prometheus alert rules query is one Pulse exposes (so neither can drift from the code), and
//! every metric Pulse exposes says what it is.

use crate::common;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::jetstream::JetstreamStandIn;
use common::*;

/// The files whose queries name metrics.
const QUERYING: [&str; 3] = [
    "deploy/grafana/dashboards/pulse.json",
    "deploy/prometheus/rules.yml",
    "deploy/monitoring.yaml",
];

/// Every `pulse_*` or `process_*` metric a file names, with a histogram's `_bucket`, `_sum`
/// and `_count` series read as the histogram.
fn metrics_named_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| c.is_ascii_lowercase()) {
        let start = &rest[at..];
        let end = start.find(|c: char| !is_name(c)).unwrap_or(start.len());
        let preceded_by_name = at > 0 && rest[..at].ends_with(|c: char| is_name(c) || c == '.');
        // A file name (`pulse_x.json`) is not a metric.
        let file_name = start[end..].starts_with('.')
            && start[end + 1..].starts_with(|c: char| c.is_ascii_alphabetic());
        let word = &start[..end];
        if !preceded_by_name
            && !file_name
            && (word.starts_with("pulse_") || word.starts_with("process_"))
        {
            out.insert(histogram_name(word).to_string());
        }
        rest = &start[end..];
    }
    out
}

fn histogram_name(series: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| series.strip_suffix(suffix))
        .unwrap_or(series)
}

/// The metric names of a Prometheus text exposition, and those that have a `# HELP` line.
fn exposed(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut names = BTreeSet::new();
    let mut described = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described.insert(rest.split(' ').next().unwrap_or_default().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            names.insert(histogram_name(name).to_string());
        }
    }
    (names, described)
}

#[test]
fn the_name_reader_finds_names_in_queries_and_leaves_the_rest() {
    let found = metrics_named_in(
        r#"sum by (le) (rate(pulse_pipeline_latency_seconds_bucket[5m])) / process_resident_memory_bytes
           see pulse_consumer_lag_entries; not my_pulse_thing or deploy/pulse_x.json"#,
    );
    let expected: BTreeSet<String> = [
        "pulse_pipeline_latency_seconds",
        "process_resident_memory_bytes",
        "pulse_consumer_lag_entries",
    ]
    .map(String::from)
    .into();
    assert_eq!(found, expected);
}

#[actix_rt::test]
async fn every_metric_the_dashboard_and_the_alert_rules_query_is_exposed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut queried = BTreeSet::new();
    for file in QUERYING {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        let named = metrics_named_in(&text);
        assert!(named.len() >= 8, "{file} names only {named:?}");
        queried.extend(named);
    }

    // A Pulse with a source (the replay's posts, replies and reposts) and the virality tracker
    // ticking, so every stage has run once.
    let standin = JetstreamStandIn::start(jetstream::replay_lines(), None, Duration::ZERO).await;
    let app = crate::sources::serve_with(
        TestEnv::new().await,
        crate::sources::source(standin.endpoint.clone()),
    )
    .await;
    assert!(
        app.wait_for_posts(3, Duration::from_secs(30)).await,
        "the replay's posts were not stored"
    );
    let (status, _) = app.get("/api/v1/posts").await;
    assert_eq!(status, 200);

    // Histograms appear with their first sample; give every stage a moment after the posts.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (missing, undescribed) = loop {
        let (names, described) = exposed(&metrics_text(&app).await);
        let missing: BTreeSet<String> = queried.difference(&names).cloned().collect();
        let undescribed: BTreeSet<String> = names.difference(&described).cloned().collect();
        if missing.is_empty() || std::time::Instant::now() > deadline {
            break (missing, undescribed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        missing.is_empty(),
        "queried by the dashboard or the rules but not exposed by Pulse: {missing:?}"
    );
    assert!(
        undescribed.is_empty(),
        "exposed without a # HELP line: {undescribed:?}"
    );
    app.shutdown().await;
}

/// A counter without labels reads 0 on a fresh server, before anything happened: a rule over
/// `increase()` or a panel needs a first sample to rise from.
#[actix_rt::test]
async fn every_counter_without_labels_is_exposed_at_zero_from_the_start() {
    let app = spawn_app().await;
    let text = metrics_text(&app).await;
    let (names, _) = exposed(&text);
    let missing: Vec<&str> = pulse::telemetry::names::ALL
        .iter()
        .filter(|(_, kind, help)| {
            *kind == pulse::telemetry::names::Kind::Counter && !help.contains("by `")
        })
        .map(|(name, ..)| *name)
        .filter(|name| !names.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "not exposed on a fresh server: {missing:?}"
    );
    assert!(
        text.contains("pulse_http_events_refused_total{reason=\"share\"} 0"),
        "the refusals of the intake are not seeded"
    );
    app.shutdown().await;
}
