-- Retention by arrival: posts and engagements are kept `store.retention_days` after they
-- reached Pulse, whatever their own timestamps (a backfilled post from years ago is not
-- deleted the moment it is stored).
CREATE INDEX posts_ingested_idx ON posts (ingested_at);
CREATE INDEX engagements_ingested_idx ON engagements (ingested_at);

-- History kept `store.history_retention_days`: resolved alerts, finished deliveries, finished
-- cascades and their predictions; the audit log `store.audit_retention_days`.
CREATE INDEX alerts_resolved_idx ON alerts (resolved_at) WHERE status = 'resolved';
CREATE INDEX webhook_deliveries_done_idx ON webhook_deliveries (created_at) WHERE status <> 'pending';
CREATE INDEX virality_predictions_recorded_idx ON virality_predictions (recorded_at);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Thresholds are learned from each platform's most recent finished cascades.
CREATE INDEX virality_cascades_recent_finished_idx
    ON virality_cascades (platform, last_activity_at DESC) WHERE status = 'finished';
