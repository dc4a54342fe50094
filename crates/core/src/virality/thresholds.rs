//! Viral thresholds learned from finished cascades. Each producer's cascades are judged
//! against the quantile of its own finished cascades, so a producer cannot raise the bar for
//! everyone (a hundred cascades of a million shares each) nor lower it (ten thousand of one
//! share) but for itself. A post of a producer without enough history of its own, and a post
//! judged outside the stream (a forecast, a scored cascade), gets its platform's threshold:
//! the median of its producers' thresholds, which one producer among three or more cannot
//! move past the others'.

use std::collections::BTreeMap;

use serde::Serialize;

/// The thresholds learned, in final shares.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Learned {
    /// (platform, producer, threshold), in that order.
    producers: Vec<(String, String, f64)>,
    /// Each platform's median over its producers.
    platforms: BTreeMap<String, f64>,
}

impl Learned {
    /// The thresholds of `producers`, keyed (platform, producer).
    pub fn new(producers: BTreeMap<(String, String), f64>) -> Learned {
        let mut by_platform: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for ((platform, _), value) in &producers {
            by_platform
                .entry(platform.clone())
                .or_default()
                .push(*value);
        }
        let platforms = by_platform
            .into_iter()
            .map(|(platform, mut values)| {
                values.sort_by(f64::total_cmp);
                // The lower of two middle values, as `percentile_disc(0.5)` takes it.
                (platform, values[(values.len() - 1) / 2])
            })
            .collect();
        Learned {
            producers: producers
                .into_iter()
                .map(|((platform, producer), value)| (platform, producer, value))
                .collect(),
            platforms,
        }
    }

    /// The threshold for `producer`'s posts on `platform`: its own, else the platform's.
    pub fn get(&self, platform: &str, producer: Option<&str>) -> Option<f64> {
        producer
            .and_then(|producer| {
                self.producers
                    .binary_search_by(|(pl, pr, _)| {
                        (pl.as_str(), pr.as_str()).cmp(&(platform, producer))
                    })
                    .ok()
                    .map(|i| self.producers[i].2)
            })
            .or_else(|| self.platforms.get(platform).copied())
    }

    /// Each platform's threshold.
    pub fn platforms(&self) -> &BTreeMap<String, f64> {
        &self.platforms
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(rows: &[(&str, &str, f64)]) -> Learned {
        Learned::new(
            rows.iter()
                .map(|(pl, pr, v)| ((pl.to_string(), pr.to_string()), *v))
                .collect(),
        )
    }

    #[test]
    fn a_producer_is_judged_by_its_own_threshold_and_others_by_the_platforms_median() {
        let t = learned(&[
            ("twitter", "key:a", 40.0),
            ("twitter", "key:b", 1_000_000.0),
            ("twitter", "source:x", 60.0),
            ("reddit", "key:b", 1.0),
        ]);
        assert_eq!(t.get("twitter", Some("key:a")), Some(40.0));
        assert_eq!(t.get("twitter", Some("key:b")), Some(1_000_000.0));
        // A producer with no history of its own, or none named: the median of three.
        assert_eq!(t.get("twitter", Some("key:new")), Some(60.0));
        assert_eq!(t.get("twitter", None), Some(60.0));
        // One producer alone sets its platform's.
        assert_eq!(t.get("reddit", Some("key:a")), Some(1.0));
        assert_eq!(t.get("mastodon", Some("key:a")), None);
    }

    #[test]
    fn of_two_producers_the_platform_takes_the_lower() {
        let t = learned(&[("twitter", "a", 90.0), ("twitter", "b", 30.0)]);
        assert_eq!(t.platforms()["twitter"], 30.0);
        assert!(!t.is_empty());
        assert!(Learned::default().is_empty());
    }
}
