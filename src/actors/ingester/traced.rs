//! What a commit records in its batch's trace, apart from the commit's logic: one span per
//! stage (analyse, store, acknowledge) for each sampled entry, with what the entry turned out
//! to be. Each function does nothing when the batch is not traced.

use std::collections::HashMap;
use std::time::SystemTime;

use opentelemetry::KeyValue;

use crate::actors::messages::{
    AnalyzeError, AnalyzedBatch, RawEntry, Rejected, StoreError, StoreOutcome,
};
use crate::telemetry::traces::BatchTrace;

/// Records the `analyse` stage of a batch, with what each entry turned out to be.
pub(super) fn analysis(
    trace: Option<&BatchTrace>,
    entries: &[RawEntry],
    analyzed: &Result<Result<AnalyzedBatch, AnalyzeError>, &'static str>,
    started: SystemTime,
) {
    let Some(trace) = trace else {
        return;
    };
    let ended = SystemTime::now();
    let ids = entries.iter().map(|e| e.id.as_str());
    let size = KeyValue::new("pulse.batch.size", entries.len() as i64);
    let Ok(Ok(batch)) = analyzed else {
        let outcome = KeyValue::new("pulse.outcome", "failed");
        trace.stage("analyse", ids, started, ended, |_| {
            vec![size.clone(), outcome.clone()]
        });
        return;
    };
    let mut posts: HashMap<&str, &crate::models::AnalyzedPost> = HashMap::new();
    for p in &batch.posts {
        posts.insert(p.entry_id.as_str(), p);
        trace.describe(
            &p.entry_id,
            vec![
                KeyValue::new("pulse.event", "post"),
                KeyValue::new("pulse.post.id", p.post.id.clone()),
                KeyValue::new("pulse.platform", p.post.platform.as_str()),
            ],
        );
    }
    for e in &batch.engagements {
        trace.describe(
            &e.entry_id,
            vec![
                KeyValue::new("pulse.event", "engagement"),
                KeyValue::new("pulse.post.id", e.engagement.post_id.clone()),
            ],
        );
    }
    trace.stage("analyse", ids, started, ended, |id| {
        let mut attributes = vec![size.clone()];
        if let Some(p) = posts.get(id) {
            attributes.push(KeyValue::new("pulse.model", p.analysis.model.clone()));
            if let Some(lang) = &p.analysis.lang {
                attributes.push(KeyValue::new("pulse.lang", lang.clone()));
            }
        }
        attributes
    });
}

/// Records the `store` stage of the entries that reached the store.
pub(super) fn store(
    trace: Option<&BatchTrace>,
    entries: &[RawEntry],
    analyzed: &AnalyzedBatch,
    stored: &Result<StoreOutcome, StoreError>,
    started: SystemTime,
) {
    let Some(trace) = trace else {
        return;
    };
    // What the analyzer rejected goes to the dead letters, not to the database.
    let rejected: Vec<&str> = analyzed
        .rejected
        .iter()
        .map(|r| r.entry.id.as_str())
        .collect();
    let ids = entries
        .iter()
        .map(|e| e.id.as_str())
        .filter(|id| !rejected.contains(id));
    let outcome = match stored {
        Ok(_) => "committed",
        Err(StoreError::Refused(_)) => "refused",
        Err(StoreError::Unavailable(_)) => "unavailable",
        Err(StoreError::Suspect(_)) => "failed",
    };
    trace.stage("store", ids, started, SystemTime::now(), |_| {
        vec![
            KeyValue::new("pulse.batch.size", entries.len() as i64),
            KeyValue::new("pulse.outcome", outcome),
        ]
    });
}

/// Records the `acknowledge` stage and, once acknowledged, each dead letter and the end of
/// every entry's trace.
pub(super) fn finish(
    trace: Option<&BatchTrace>,
    rejected: &[Rejected],
    ids: &[&str],
    acknowledged: bool,
    started: SystemTime,
) {
    let Some(trace) = trace else {
        return;
    };
    let ended = SystemTime::now();
    let outcome = if acknowledged {
        "acknowledged"
    } else {
        "failed"
    };
    trace.stage("acknowledge", ids.iter().copied(), started, ended, |_| {
        vec![KeyValue::new("pulse.outcome", outcome)]
    });
    if acknowledged {
        for r in rejected {
            trace.dead_lettered(&r.entry.id, &r.reason.to_string(), r.reason.class());
        }
        trace.end(ids.iter().copied(), ended);
    }
}
