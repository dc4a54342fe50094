-- Saved views: a name for a dashboard state (topic, filters, window, panels), kept by whoever
-- saved it; a shared view is listed to every reader, the others only to their owner.
CREATE TABLE saved_views (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The dashboard's state as its URL says it: {"topic", "filters", "window", "panels"}.
    state      JSONB NOT NULL,
    -- The caller that saved it (an API key's id, or the network on an open server).
    owner      TEXT NOT NULL,
    shared     BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX saved_views_owner_idx ON saved_views (owner, id);

-- Digest schedules: a report of each period of a scope (every post, or one topic), sent to
-- channels already configured. A period ends at `at` local time in `timezone` (IANA), every
-- day or on `weekday` (ISO: 1 Monday .. 7 Sunday) every week, and runs back to the end before.
CREATE TABLE digest_schedules (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    topic_id   BIGINT REFERENCES topics (id),
    cadence    TEXT NOT NULL CHECK (cadence IN ('daily', 'weekly')),
    weekday    SMALLINT CHECK (weekday BETWEEN 1 AND 7),
    at         TIME NOT NULL,
    timezone   TEXT NOT NULL,
    channels   BIGINT[] NOT NULL CHECK (cardinality(channels) BETWEEN 1 AND 20),
    view_id    BIGINT REFERENCES saved_views (id) ON DELETE SET NULL,
    enabled    BOOLEAN NOT NULL DEFAULT true,
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((cadence = 'weekly') = (weekday IS NOT NULL))
);

-- Digests made: one row per scheduled period, however many processes race to make it (the
-- unique index), written in the same transaction as its deliveries; `send now` adds rows of
-- its own. `late`: made after its period's end had passed by more than the grace.
CREATE TABLE digests (
    id          BIGSERIAL PRIMARY KEY,
    schedule_id BIGINT REFERENCES digest_schedules (id) ON DELETE CASCADE,
    period_from TIMESTAMPTZ NOT NULL,
    period_to   TIMESTAMPTZ NOT NULL,
    late        BOOLEAN NOT NULL DEFAULT false,
    manual      BOOLEAN NOT NULL DEFAULT false,
    content     JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX digests_once_idx ON digests (schedule_id, period_to) WHERE NOT manual;

-- A delivery announces an alert (firing or resolved) or carries a digest, through the same
-- outbox: claimed with SKIP LOCKED, retried with backoff, each sent by one process.
ALTER TABLE webhook_deliveries ALTER COLUMN alert_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN digest_id BIGINT REFERENCES digests (id) ON DELETE CASCADE;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_one_subject
    CHECK ((alert_id IS NULL) <> (digest_id IS NULL));
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_event_check
    CHECK (event IN ('fire', 'resolve', 'digest'));
CREATE UNIQUE INDEX webhook_deliveries_digest_once_idx
    ON webhook_deliveries (webhook_id, digest_id) WHERE digest_id IS NOT NULL;

-- The period of a digest schedule `back` periods before the latest one that ended by `now`
-- (`back` 0: that latest one), computed in local time in `tz`: a daily period runs from one
-- local `at_local` to the next, a weekly one from that time on `weekday` (ISO) to the next,
-- whatever their length in hours across a change of daylight-saving time.
CREATE FUNCTION pulse_digest_period(cadence TEXT, weekday SMALLINT, at_local TIME, tz TEXT,
                                    now_ TIMESTAMPTZ, back INT)
RETURNS TABLE (period_from TIMESTAMPTZ, period_to TIMESTAMPTZ) LANGUAGE sql STABLE AS $$
    WITH l AS (SELECT now_ AT TIME ZONE tz AS l),
    e AS (
        SELECT CASE
                   WHEN cadence = 'daily' THEN
                       CASE WHEN l.l::date + at_local <= l.l THEN l.l::date + at_local
                            ELSE (l.l::date - 1) + at_local END
                   ELSE
                       CASE WHEN (date_trunc('week', l.l)::date + (weekday - 1)) + at_local <= l.l
                            THEN (date_trunc('week', l.l)::date + (weekday - 1)) + at_local
                            ELSE (date_trunc('week', l.l)::date + (weekday - 8)) + at_local END
               END AS end_local,
               CASE WHEN cadence = 'daily' THEN interval '1 day' ELSE interval '7 days' END AS step
        FROM l)
    SELECT (end_local - step * (back + 1)) AT TIME ZONE tz,
           (end_local - step * back) AT TIME ZONE tz
    FROM e
$$;
