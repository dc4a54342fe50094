-- Per-minute rollups by dimension, maintained with additive upserts in the same statement
-- that inserts the posts, so they are exact (a replayed post adds nothing) and several Pulse
-- processes sharing a consumer group add up to the global numbers.
CREATE TABLE metric_rollups (
    minute          TIMESTAMPTZ NOT NULL,
    dimension       TEXT NOT NULL CHECK (dimension IN ('overall', 'platform', 'city', 'country', 'product', 'channel')),
    key             TEXT NOT NULL,
    posts           BIGINT NOT NULL DEFAULT 0,
    sentiment_sum   DOUBLE PRECISION NOT NULL DEFAULT 0,
    negative        BIGINT NOT NULL DEFAULT 0,
    neutral         BIGINT NOT NULL DEFAULT 0,
    positive        BIGINT NOT NULL DEFAULT 0,
    toxicity_sum    DOUBLE PRECISION NOT NULL DEFAULT 0,
    churn_sum       DOUBLE PRECISION NOT NULL DEFAULT 0,
    high_churn      BIGINT NOT NULL DEFAULT 0,
    anger           BIGINT NOT NULL DEFAULT 0,
    joy             BIGINT NOT NULL DEFAULT 0,
    optimism        BIGINT NOT NULL DEFAULT 0,
    sadness         BIGINT NOT NULL DEFAULT 0,
    likes           BIGINT NOT NULL DEFAULT 0,
    shares          BIGINT NOT NULL DEFAULT 0,
    comments        BIGINT NOT NULL DEFAULT 0,
    views           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, key, minute)
);

-- Window queries read one dimension over recent minutes.
CREATE INDEX metric_rollups_minute_idx ON metric_rollups (minute, dimension);

-- Per-minute term and hashtag counts for trending terms.
CREATE TABLE term_rollups (
    minute        TIMESTAMPTZ NOT NULL,
    term          TEXT NOT NULL,
    posts         BIGINT NOT NULL DEFAULT 0,
    sentiment_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, term)
);
