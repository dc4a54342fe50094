-- Alert rules, managed at /api/v1/alert-rules. A rule watches one dimension (every key of it,
-- or one key) over a window; baseline rules compare the window with the windows before it.
CREATE TABLE alert_rules (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('negativity', 'churn', 'volume_spike', 'sentiment_dip', 'toxicity')),
    dimension           TEXT NOT NULL DEFAULT 'overall'
                        CHECK (dimension IN ('overall', 'platform', 'city', 'country', 'product', 'channel')),
    key                 TEXT,
    window_minutes      INTEGER NOT NULL DEFAULT 5 CHECK (window_minutes BETWEEN 1 AND 1440),
    threshold           DOUBLE PRECISION NOT NULL DEFAULT 0.5,
    min_volume          BIGINT NOT NULL DEFAULT 20 CHECK (min_volume >= 0),
    baseline_minutes    INTEGER NOT NULL DEFAULT 60 CHECK (baseline_minutes BETWEEN 1 AND 10080),
    k                   DOUBLE PRECISION NOT NULL DEFAULT 3,
    min_baseline_points INTEGER NOT NULL DEFAULT 6 CHECK (min_baseline_points >= 1),
    severity            TEXT NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    cooldown_secs       INTEGER NOT NULL DEFAULT 900 CHECK (cooldown_secs >= 0),
    enabled             BOOLEAN NOT NULL DEFAULT true,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Fired alerts with the evidence of why. At most one open alert per rule and scope, enforced
-- by the database, so several Pulse processes evaluating the same rules fire it once.
CREATE TABLE alerts (
    id              BIGSERIAL PRIMARY KEY,
    rule_id         BIGINT REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    dimension       TEXT NOT NULL,
    key             TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'firing' CHECK (status IN ('firing', 'acknowledged', 'resolved')),
    value           DOUBLE PRECISION NOT NULL,
    threshold       DOUBLE PRECISION NOT NULL,
    evidence        JSONB NOT NULL,
    fired_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    acknowledged_at TIMESTAMPTZ,
    resolved_at     TIMESTAMPTZ,
    cleared_since   TIMESTAMPTZ
);

CREATE UNIQUE INDEX alerts_one_open_idx ON alerts (rule_id, dimension, key) WHERE status <> 'resolved';
CREATE INDEX alerts_fired_idx ON alerts (fired_at DESC, id DESC);

-- Sensible rules on a new installation.
INSERT INTO alert_rules (name, kind, window_minutes, threshold, min_volume, severity) VALUES
    ('Negativity above half of posts', 'negativity', 5, 0.5, 20, 'warning'),
    ('Churn risk spike', 'churn', 5, 0.2, 20, 'critical'),
    ('Volume spike', 'volume_spike', 5, 0, 20, 'info'),
    ('Sentiment dip', 'sentiment_dip', 5, 0, 20, 'warning'),
    ('Toxicity surge', 'toxicity', 5, 0.3, 20, 'warning');
