//! Zero series for the label values the pipeline knows in advance, written when it starts, so
//! a dashboard panel or an alert rule over them reads 0 instead of no data until the first
//! event (a rule over "no data" never fires, and `increase` needs a first sample to rise from).

use super::messages::RejectReason;
use crate::models::alerts::RuleKind;
use crate::telemetry::names;

/// Writes every known series at 0 (a counter's `increment(0)` creates it without changing it).
pub fn seed() {
    for reason in RejectReason::CLASSES {
        metrics::counter!(names::DEAD_LETTERS, "reason" => *reason).increment(0);
    }
    for outcome in ["delivered", "retry", "dead"] {
        metrics::counter!(names::WEBHOOK_DELIVERIES, "outcome" => outcome).increment(0);
    }
    for kind in RuleKind::ALL {
        metrics::counter!(names::ALERTS_FIRED, "kind" => kind.as_str()).increment(0);
    }
    for stage in ["analyzer", "store", "ack"] {
        metrics::counter!(names::BATCH_RETRIES, "stage" => stage).increment(0);
    }
    for kind in ["unavailable", "refused", "failed", "panicked"] {
        metrics::counter!(names::STORE_ERRORS, "error_type" => kind).increment(0);
    }
    for kind in ["redis", "nogroup"] {
        metrics::counter!(names::READ_ERRORS, "error_type" => kind).increment(0);
    }
    for to in ["lexicon", "model"] {
        metrics::counter!(names::ANALYZER_SWITCHES, "to" => to).increment(0);
    }
    for operation in ["lookup", "revive", "rebuild", "feed", "write"] {
        metrics::counter!(names::VIRALITY_ERRORS, "operation" => operation).increment(0);
    }
    for reason in [
        "backlog",
        "backlog_age",
        "backlog_bytes",
        "rate",
        "share",
        "out_of_scope",
    ] {
        metrics::counter!(names::EVENTS_REFUSED, "reason" => reason).increment(0);
    }
    // Through the recorder itself: these names come from the list, not from a literal the
    // metrics table's check could read (each is also recorded where it happens).
    static METADATA: metrics::Metadata<'static> =
        metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
    for (name, kind, help) in names::ALL {
        if *kind == names::Kind::Counter && !has_labels(help) {
            let key = metrics::Key::from_static_name(name);
            metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA))
                .increment(0);
        }
    }
}

/// Whether a metric's help text names labels: every labelled metric's says "by `label`".
fn has_labels(help: &str) -> bool {
    help.contains("by `")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_metrics_say_so_in_their_help() {
        assert!(has_labels(
            names::ALL
                .iter()
                .find(|(n, ..)| *n == names::DEAD_LETTERS)
                .unwrap()
                .2
        ));
        assert!(!has_labels(
            names::ALL
                .iter()
                .find(|(n, ..)| *n == names::ENTRIES_READ)
                .unwrap()
                .2
        ));
    }
}
