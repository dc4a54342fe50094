//! The settings that decide what becomes of a stream entry, as one short digest. Every process
//! of a group must decide an entry the same way: with two limits on an entry's size, one
//! process stores what another dead-letters, depending on which reads it. The group monitor
//! publishes each process's digest and says when they differ.

use sha2::{Digest, Sha256};

use super::Settings;

impl Settings {
    /// A digest of the settings that decide an entry's fate: what is read whole, delivered
    /// again, trusted and held (`ingest`), how it is analysed (`analyzer`: the backend and
    /// models), counted (`metrics.high_churn_threshold`, `metrics.max_keys_per_dimension`),
    /// placed in stories (`stories`) and
    /// tagged (`topics`). Ports, pools, intervals and budgets are left out: processes may
    /// differ in those.
    pub fn decisions_fingerprint(&self) -> String {
        let ingest = &self.ingest;
        let decisions = serde_json::json!({
            "ingest": {
                "max_deliveries": ingest.max_deliveries,
                "max_entry_bytes": ingest.max_entry_bytes,
                "max_entry_fields": ingest.max_entry_fields,
                "producer_trust": ingest.producer_trust,
                "unknown_post_hold_secs": ingest.unknown_post_hold_secs,
            },
            "analyzer": {
                "backend": self.analyzer.backend,
                "bundles": self.analyzer.bundles,
                "multilingual_bundles": self.analyzer.multilingual_bundles,
            },
            "metrics": {
                "high_churn_threshold": self.metrics.high_churn_threshold,
                "max_keys_per_dimension": self.metrics.max_keys_per_dimension,
            },
            "stories": self.stories,
            "topics": self.topics,
        });
        let digest = Sha256::digest(decisions.to_string().as_bytes());
        crate::models::hex::hex(&digest[..6])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settings_that_decide_entries_change_the_fingerprint() {
        let base = Settings::default();
        let mut port = base.clone();
        port.http.listen = "127.0.0.1:9999".into();
        port.ingest.read_batch = 7;
        assert_eq!(base.decisions_fingerprint(), port.decisions_fingerprint());
        let mut size = base.clone();
        size.ingest.max_entry_bytes = 1024;
        assert_ne!(base.decisions_fingerprint(), size.decisions_fingerprint());
        assert_eq!(base.decisions_fingerprint().len(), 12);
    }
}
