-- Channels: besides the generic signed webhook, a subscription may deliver in the format of
-- Slack or Microsoft Teams (incoming webhooks), PagerDuty (Events API v2, the routing key kept
-- in `secret`) or email (`url` = mailto:recipients), and only alerts of a minimum severity.
ALTER TABLE webhooks
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook'
        CHECK (kind IN ('webhook', 'slack', 'teams', 'pagerduty', 'email')),
    ADD COLUMN name TEXT NOT NULL DEFAULT '',
    ADD COLUMN min_severity TEXT NOT NULL DEFAULT 'info'
        CHECK (min_severity IN ('info', 'warning', 'critical'));

-- A delivery announces an alert firing or, on channels that show it, its resolution; each
-- once per subscription.
ALTER TABLE webhook_deliveries
    ADD COLUMN event TEXT NOT NULL DEFAULT 'fire' CHECK (event IN ('fire', 'resolve'));
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_webhook_id_alert_id_key;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, alert_id, event);

-- Quiet hours per channel (local times in its time zone; `to` before `from` runs overnight):
-- alerts below critical wait until they end, critical ones go at once.
ALTER TABLE webhooks
    ADD COLUMN quiet_from TIME,
    ADD COLUMN quiet_to TIME,
    ADD COLUMN quiet_timezone TEXT NOT NULL DEFAULT 'UTC';

-- When the quiet hours that hold at `at` end; NULL when they do not hold.
CREATE FUNCTION pulse_quiet_until(quiet_from TIME, quiet_to TIME, tz TEXT, at TIMESTAMPTZ)
RETURNS TIMESTAMPTZ LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN quiet_from IS NULL OR quiet_to IS NULL OR quiet_from = quiet_to THEN NULL
        WHEN quiet_from < quiet_to THEN
            CASE WHEN l::time >= quiet_from AND l::time < quiet_to
                 THEN (l::date + quiet_to) AT TIME ZONE tz END
        ELSE
            CASE WHEN l::time >= quiet_from THEN ((l::date + 1) + quiet_to) AT TIME ZONE tz
                 WHEN l::time < quiet_to THEN (l::date + quiet_to) AT TIME ZONE tz END
    END
    FROM (SELECT at AT TIME ZONE tz AS l) AS local
$$;

-- The channels a rule notifies; NULL: every channel.
ALTER TABLE alert_rules ADD COLUMN channels BIGINT[];
