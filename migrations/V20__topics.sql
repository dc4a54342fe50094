-- Topics: what a team listens for, a name and a query (docs/topics.md). Every post is matched
-- once, at analysis, against the active topics, and stored with the ids it matched and the
-- version of each topic's query that matched; the rollups count it under the dimension
-- `topic` (key: the topic's id), so every aggregate can be scoped to a topic.
--
-- An edit of a query is a new version (`topic_versions` keeps each); a deleted topic keeps its
-- row (`deleted_at`), so its id is never reused and posts matched before the deletion still
-- name a topic that existed. Every change takes a new `revision` from one sequence: processes
-- poll the sum of the revisions, which grows with every committed change whatever order changes
-- commit in, and rebuild their matcher when it moves.
CREATE SEQUENCE topic_revisions;

CREATE TABLE topics (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    query      TEXT NOT NULL,
    version    INT NOT NULL DEFAULT 1 CHECK (version >= 1),
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    revision   BIGINT NOT NULL DEFAULT nextval('topic_revisions'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by TEXT,
    deleted_at TIMESTAMPTZ
);

-- One live topic per name, whatever its case.
CREATE UNIQUE INDEX topics_name_idx ON topics (lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX topics_revision_idx ON topics (revision);

CREATE TABLE topic_versions (
    topic_id   BIGINT NOT NULL REFERENCES topics (id),
    version    INT NOT NULL,
    query      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by TEXT,
    PRIMARY KEY (topic_id, version)
);

-- Re-tagging stored posts for a topic's current version ("apply to the last N days"): a job a
-- process of the group works through in chunks, by keyset on (created_at, id), recording its
-- cursor after each chunk so another process (or this one after a restart) resumes it.
CREATE TABLE topic_retags (
    id          BIGSERIAL PRIMARY KEY,
    topic_id    BIGINT NOT NULL REFERENCES topics (id),
    version     INT NOT NULL,
    from_at     TIMESTAMPTZ NOT NULL,
    to_at       TIMESTAMPTZ NOT NULL,
    status      TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    -- The last post done, newest first: (created_at, id).
    cursor_at   TIMESTAMPTZ,
    cursor_id   TEXT,
    scanned     BIGINT NOT NULL DEFAULT 0,
    matched     BIGINT NOT NULL DEFAULT 0,
    added       BIGINT NOT NULL DEFAULT 0,
    removed     BIGINT NOT NULL DEFAULT 0,
    total       BIGINT,
    -- Chunks that failed in a row; past five the job is `failed`, so one that cannot go on
    -- does not hold up the jobs after it.
    failures    INT NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    created_by  TEXT
);

CREATE INDEX topic_retags_open_idx ON topic_retags (id) WHERE status IN ('queued', 'running');

-- The topics a post matched, sorted by id, with the version of each (same order); NULL when
-- none, so posts without topics cost the index nothing.
ALTER TABLE posts ADD COLUMN topics BIGINT[], ADD COLUMN topic_versions INT[];
CREATE INDEX posts_topics_idx ON posts USING gin (topics) WHERE topics IS NOT NULL;

ALTER TABLE metric_rollups DROP CONSTRAINT metric_rollups_dimension_check;
ALTER TABLE metric_rollups ADD CONSTRAINT metric_rollups_dimension_check
    CHECK (dimension IN ('overall', 'platform', 'city', 'country', 'product', 'channel', 'language', 'support', 'topic'));

ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_dimension_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_dimension_check
    CHECK (dimension IN ('overall', 'platform', 'city', 'country', 'product', 'channel', 'language', 'support', 'topic'));

-- Editors write topics; they read what analysts read.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('ingest', 'analyst', 'editor', 'admin'));

-- What a post adds to the rollups, as in V15, with its topics: a post counts under each topic
-- it matched, as it counts under the overall dimension (posts no model understands do not).
DROP FUNCTION post_rollup_deltas(INT, TIMESTAMPTZ, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT,
    SMALLINT, TEXT, REAL, REAL, REAL, TEXT, REAL);
CREATE FUNCTION post_rollup_deltas(
    p_sign INT, created_at TIMESTAMPTZ, platform TEXT, city TEXT, country TEXT, product TEXT,
    channel TEXT, lang TEXT, language_support TEXT, rollup_other SMALLINT,
    sentiment_label TEXT, sentiment_score REAL, toxicity REAL, churn_risk REAL, emotion TEXT,
    topics BIGINT[], p_high_churn REAL)
RETURNS TABLE (minute TIMESTAMPTZ, dimension TEXT, key TEXT, posts INT, sentiment_sum FLOAT8,
               negative INT, neutral INT, positive INT, toxicity_sum FLOAT8, churn_sum FLOAT8,
               high_churn INT, anger INT, joy INT, optimism INT, sadness INT,
               likes INT8, shares INT8, comments INT8, views INT8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_trunc('minute', $2), d.dimension, d.key,
           $1, w.w * $1 * $12::float8,
           w.w * $1 * ($11 = 'negative')::int,
           w.w * $1 * ($11 = 'neutral')::int,
           w.w * $1 * ($11 = 'positive')::int,
           w.w * $1 * $13::float8, w.w * $1 * $14::float8,
           w.w * $1 * ($14 >= $17)::int,
           w.w * $1 * ($15 IS NOT DISTINCT FROM 'anger')::int,
           w.w * $1 * ($15 IS NOT DISTINCT FROM 'joy')::int,
           w.w * $1 * ($15 IS NOT DISTINCT FROM 'optimism')::int,
           w.w * $1 * ($15 IS NOT DISTINCT FROM 'sadness')::int,
           0::int8, 0::int8, 0::int8, 0::int8
    FROM (SELECT ($9 <> 'unsupported')::int AS w) AS w
    CROSS JOIN LATERAL (
        SELECT * FROM (VALUES
            ('overall', ''), ('platform', $3),
            ('city', rollup_key('city', $4, $10)),
            ('country', rollup_key('country', $5, $10)),
            ('product', rollup_key('product', $6, $10)),
            ('channel', rollup_key('channel', $7, $10)),
            ('language', rollup_key('language', COALESCE($8, 'und'), $10)),
            ('support', $9)) AS v (dimension, key)
        UNION ALL
        SELECT 'topic', t::text FROM unnest($16) AS t) AS d (dimension, key)
    WHERE d.key IS NOT NULL AND (w.w = 1 OR d.dimension IN ('language', 'support'))
$$;

-- What an engagement adds to the rollups, as in V15, counted under its post's topics too.
DROP FUNCTION engagement_rollup_deltas(INT, TIMESTAMPTZ, TEXT, INT, TEXT, TEXT, TEXT, TEXT,
    TEXT, SMALLINT);
CREATE FUNCTION engagement_rollup_deltas(
    p_sign INT, at TIMESTAMPTZ, kind TEXT, count INT, platform TEXT, city TEXT, country TEXT,
    product TEXT, channel TEXT, rollup_other SMALLINT, topics BIGINT[])
RETURNS TABLE (minute TIMESTAMPTZ, dimension TEXT, key TEXT, posts INT, sentiment_sum FLOAT8,
               negative INT, neutral INT, positive INT, toxicity_sum FLOAT8, churn_sum FLOAT8,
               high_churn INT, anger INT, joy INT, optimism INT, sadness INT,
               likes INT8, shares INT8, comments INT8, views INT8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_trunc('minute', $2), d.dimension, d.key,
           0, 0::float8, 0, 0, 0, 0::float8, 0::float8, 0, 0, 0, 0, 0,
           $1 * CASE WHEN $3 = 'like' THEN $4 ELSE 0 END::int8,
           $1 * CASE WHEN $3 = 'share' THEN $4 ELSE 0 END::int8,
           $1 * CASE WHEN $3 = 'comment' THEN $4 ELSE 0 END::int8,
           $1 * CASE WHEN $3 = 'view' THEN $4 ELSE 0 END::int8
    FROM (
        SELECT * FROM (VALUES
            ('overall', ''), ('platform', $5),
            ('city', rollup_key('city', $6, $10)),
            ('country', rollup_key('country', $7, $10)),
            ('product', rollup_key('product', $8, $10)),
            ('channel', rollup_key('channel', $9, $10))) AS v (dimension, key)
        UNION ALL
        SELECT 'topic', t::text FROM unnest($11) AS t) AS d (dimension, key)
    WHERE d.key IS NOT NULL
$$;

-- What the live stages need of a post just deleted, as in V15, with its topics (live
-- subscribers filtered by a topic hear of its deletion).
CREATE OR REPLACE FUNCTION deleted_post(p posts) RETURNS JSONB
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object(
        'id', p.id, 'created_at', p.created_at, 'deleted_at', p.deleted_at, 'text', p.text,
        'sentiment_score', p.sentiment_score, 'sentiment_label', p.sentiment_label,
        'platform', p.platform, 'city', p.city,
        'country', p.country, 'product', p.product, 'channel', p.channel, 'lang', p.lang,
        'topics', COALESCE(to_jsonb(p.topics), '[]'::jsonb))
$$;
