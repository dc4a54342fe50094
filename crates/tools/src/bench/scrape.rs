//! Reads a `pulse serve` child's `/metrics` from outside: counters summed over their labels,
//! and the end-to-end latency histogram (XADD to commit). The multi-process benchmarks
//! measure each child this way, so what they report is what the processes themselves
//! recorded, and two readings subtract into the figures of the interval between them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

use crate::telemetry::names;

/// A cumulative Prometheus histogram: upper bounds (the last is +Inf) and the count of
/// samples at or below each.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Buckets {
    pub bounds: Vec<f64>,
    pub cumulative: Vec<f64>,
}

impl Buckets {
    /// Samples in the histogram.
    pub fn count(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    /// Adds another process's histogram with the same bounds (or starts from it).
    pub fn add(&mut self, other: &Buckets) {
        if self.bounds.is_empty() {
            *self = other.clone();
            return;
        }
        for (mine, theirs) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *mine += theirs;
        }
    }

    /// The samples recorded since `earlier` (a previous reading of the same histogram).
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        if earlier.bounds.is_empty() {
            return self.clone();
        }
        Buckets {
            bounds: self.bounds.clone(),
            cumulative: self
                .cumulative
                .iter()
                .zip(&earlier.cumulative)
                .map(|(now, then)| (now - then).max(0.0))
                .collect(),
        }
    }

    /// The `q` quantile, interpolated linearly inside its bucket as Prometheus'
    /// `histogram_quantile` does; in the +Inf bucket, the largest finite bound. None without
    /// samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, cumulative) in self.bounds.iter().zip(&self.cumulative) {
            if *cumulative >= rank && *cumulative > below {
                if bound.is_infinite() {
                    return Some(lower);
                }
                let share = (rank - below) / (cumulative - below);
                return Some(lower + (bound - lower) * share);
            }
            if bound.is_finite() {
                lower = *bound;
            }
            below = *cumulative;
        }
        Some(lower)
    }
}

/// One reading of a process's metrics.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reading {
    /// Every counter and gauge, summed over its label sets.
    pub values: HashMap<String, f64>,
    /// `pulse_pipeline_latency_seconds`.
    pub latency: Buckets,
}

impl Reading {
    /// A counter or gauge (0 when the process never recorded it).
    pub fn value(&self, name: &str) -> f64 {
        self.values.get(name).copied().unwrap_or(0.0)
    }

    /// Adds another process's reading.
    pub fn add(&mut self, other: &Reading) {
        for (name, value) in &other.values {
            *self.values.entry(name.clone()).or_default() += value;
        }
        self.latency.add(&other.latency);
    }
}

/// Parses the Prometheus text exposition.
pub(crate) fn parse(text: &str) -> Reading {
    let bucket_name = format!("{}_bucket", names::PIPELINE_LATENCY_SECONDS);
    let mut reading = Reading::default();
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if name == bucket_name {
            let le = series
                .split("le=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|le| match le {
                    "+Inf" => Some(f64::INFINITY),
                    other => other.parse().ok(),
                });
            if let Some(le) = le {
                match buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, count)) => *count += value,
                    None => buckets.push((le, value)),
                }
            }
            continue;
        }
        *reading.values.entry(name.to_string()).or_default() += value;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    reading.latency = Buckets {
        bounds: buckets.iter().map(|(b, _)| *b).collect(),
        cumulative: buckets.iter().map(|(_, c)| *c).collect(),
    };
    reading
}

/// Reads `/metrics` of the process listening on `address`.
pub(crate) async fn read(address: SocketAddr) -> anyhow::Result<Reading> {
    let text = reqwest::Client::new()
        .get(format!("http://{address}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("reading http://{address}/metrics"))?
        .text()
        .await?;
    Ok(parse(&text))
}

/// The sum of the readings of every process.
pub(crate) async fn read_all(addresses: &[SocketAddr]) -> anyhow::Result<Reading> {
    let mut total = Reading::default();
    for address in addresses {
        total.add(&read(*address).await?);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE pulse_ingest_entries_acked_total counter
pulse_ingest_entries_acked_total 120
pulse_dead_letters_total{reason=\"malformed\"} 2
pulse_dead_letters_total{reason=\"too_large\"} 1
pulse_pipeline_latency_seconds_bucket{le=\"0.01\"} 50
pulse_pipeline_latency_seconds_bucket{le=\"0.02\"} 90
pulse_pipeline_latency_seconds_bucket{le=\"0.05\"} 100
pulse_pipeline_latency_seconds_bucket{le=\"+Inf\"} 100
pulse_pipeline_latency_seconds_sum 1.2
pulse_pipeline_latency_seconds_count 100
";

    #[test]
    fn sums_counters_over_labels_and_reads_the_latency_buckets() {
        let r = parse(TEXT);
        assert_eq!(r.value("pulse_ingest_entries_acked_total"), 120.0);
        assert_eq!(r.value("pulse_dead_letters_total"), 3.0);
        assert_eq!(r.value("pulse_store_errors_total"), 0.0);
        assert_eq!(r.latency.count(), 100.0);
        assert_eq!(r.latency.bounds.len(), 4);
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let h = parse(TEXT).latency;
        assert!((h.quantile(0.5).unwrap() - 0.01).abs() < 1e-9);
        // 75th sample of 100: 25 of the 40 samples between 10 and 20 ms.
        assert!((h.quantile(0.75).unwrap() - 0.01625).abs() < 1e-9);
        assert!((h.quantile(0.99).unwrap() - 0.047).abs() < 1e-9);
        assert_eq!(Buckets::default().quantile(0.5), None);
    }

    #[test]
    fn readings_subtract_and_add_up() {
        let later = parse(TEXT).latency;
        let mut earlier = later.clone();
        earlier.cumulative = vec![40.0, 40.0, 40.0, 40.0];
        let delta = later.since(&earlier);
        assert_eq!(delta.cumulative, vec![10.0, 50.0, 60.0, 60.0]);
        let mut both = delta.clone();
        both.add(&delta);
        assert_eq!(both.count(), 120.0);
        // Samples beyond the last finite bound read as that bound.
        let tail = Buckets {
            bounds: vec![0.1, f64::INFINITY],
            cumulative: vec![0.0, 10.0],
        };
        assert_eq!(tail.quantile(0.5), Some(0.1));
    }
}
