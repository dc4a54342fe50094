-- Channels: besides the generic signed webhook, a subscription may deliver in the format of
-- Slack or Microsoft Teams (incoming webhooks) or PagerDuty (Events API v2, the routing key
-- kept in `secret`), and only alerts of a minimum severity.
ALTER TABLE webhooks
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook'
        CHECK (kind IN ('webhook', 'slack', 'teams', 'pagerduty')),
    ADD COLUMN name TEXT NOT NULL DEFAULT '',
    ADD COLUMN min_severity TEXT NOT NULL DEFAULT 'info'
        CHECK (min_severity IN ('info', 'warning', 'critical'));

-- A delivery announces an alert firing or, on channels that show it, its resolution; each
-- once per subscription.
ALTER TABLE webhook_deliveries
    ADD COLUMN event TEXT NOT NULL DEFAULT 'fire' CHECK (event IN ('fire', 'resolve'));
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_webhook_id_alert_id_key;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, alert_id, event);
