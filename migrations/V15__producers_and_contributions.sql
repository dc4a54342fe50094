-- Who wrote what, and one definition of what a post adds to the rollups.
--
-- Every event records its producer: `key:<key id>` for an ingest key, `http` for the intake
-- without authentication, `source:<name>` for a connector, `import` for `pulse import`, and
-- `stream` for an entry written straight to the stream without one. A post id belongs to the
-- producer that first stored it; deletions and engagements from another producer are refused
-- unless `ingest.producer_trust` lets that producer act for the owner (`may_act`). Rows from
-- before this migration belong to `stream`, the producer every entry had until then.
ALTER TABLE posts ADD COLUMN producer TEXT NOT NULL DEFAULT 'stream';
ALTER TABLE engagements ADD COLUMN producer TEXT NOT NULL DEFAULT 'stream';
ALTER TABLE post_deletions ADD COLUMN producer TEXT NOT NULL DEFAULT 'stream';

-- One producer's deletion of an id another produced first must not take the slot of the
-- owner's own deletion, which may come later.
ALTER TABLE post_deletions DROP CONSTRAINT post_deletions_pkey;
ALTER TABLE post_deletions ADD PRIMARY KEY (post_id, producer);

-- An engagement whose post is not stored yet is kept `held`: not counted, not shown, not fed
-- to the virality tracker, until its post arrives (then it is released, or refused when its
-- producer may not act for the post's) or `ingest.unknown_post_hold_secs` pass (then dropped).
-- Rows from before this migration were counted when they arrived, so none is held.
ALTER TABLE engagements ADD COLUMN held BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX engagements_held_idx ON engagements (ingested_at) WHERE held;
CREATE INDEX engagements_held_post_idx ON engagements (post_id) WHERE held;

-- Whether `actor` may delete or engage with what `owner` produced, under `trust`: pairs
-- `actor=owner`, or `actor=*` for every owner.
CREATE FUNCTION may_act(actor TEXT, owner TEXT, trust TEXT[]) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT actor = owner OR (actor || '=' || owner) = ANY(trust) OR (actor || '=*') = ANY(trust)
$$;

-- What a post adds to the rollups (`p_sign` 1) or takes back out of them (-1): one row per
-- dimension and key it counts under, in the minute it was created. A post in a language no
-- model understands counts only under `language` and `support`, with no scores. The store,
-- the deletion paths and the filtered metrics all read a post's contribution from here, so a
-- dimension cannot be counted by one and not the others. The post's columns are passed one
-- by one: the function is inlined into the calling statement, and reading fields out of a
-- whole-row value for every post and dimension cost the store more than half its speed.
CREATE FUNCTION post_rollup_deltas(
    p_sign INT, created_at TIMESTAMPTZ, platform TEXT, city TEXT, country TEXT, product TEXT,
    channel TEXT, lang TEXT, language_support TEXT, rollup_other SMALLINT,
    sentiment_label TEXT, sentiment_score REAL, toxicity REAL, churn_risk REAL, emotion TEXT,
    p_high_churn REAL)
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
           w.w * $1 * ($14 >= $16)::int,
           w.w * $1 * ($15 IS NOT DISTINCT FROM 'anger')::int,
           w.w * $1 * ($15 IS NOT DISTINCT FROM 'joy')::int,
           w.w * $1 * ($15 IS NOT DISTINCT FROM 'optimism')::int,
           w.w * $1 * ($15 IS NOT DISTINCT FROM 'sadness')::int,
           0::int8, 0::int8, 0::int8, 0::int8
    FROM (SELECT ($9 <> 'unsupported')::int AS w) AS w
    CROSS JOIN LATERAL (VALUES
        ('overall', ''), ('platform', $3),
        ('city', rollup_key('city', $4, $10)),
        ('country', rollup_key('country', $5, $10)),
        ('product', rollup_key('product', $6, $10)),
        ('channel', rollup_key('channel', $7, $10)),
        ('language', rollup_key('language', COALESCE($8, 'und'), $10)),
        ('support', $9)) AS d (dimension, key)
    WHERE d.key IS NOT NULL AND (w.w = 1 OR d.dimension IN ('language', 'support'))
$$;

-- What an engagement adds to the rollups (`p_sign` 1) or takes back out (-1): its `count`, in
-- the minute it happened (`at`), under its post's keys. Only an engagement that is not held,
-- on a post that is not deleted, counts; the callers choose those rows.
CREATE FUNCTION engagement_rollup_deltas(
    p_sign INT, at TIMESTAMPTZ, kind TEXT, count INT, platform TEXT, city TEXT, country TEXT,
    product TEXT, channel TEXT, rollup_other SMALLINT)
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
    FROM (VALUES
        ('overall', ''), ('platform', $5),
        ('city', rollup_key('city', $6, $10)),
        ('country', rollup_key('country', $7, $10)),
        ('product', rollup_key('product', $8, $10)),
        ('channel', rollup_key('channel', $9, $10))) AS d (dimension, key)
    WHERE d.key IS NOT NULL
$$;

-- What the live stages need of a post that was just deleted: its id and time for the
-- dashboards, its keys for their filters, its text and score to take its terms back out.
CREATE FUNCTION deleted_post(p posts) RETURNS JSONB
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object(
        'id', p.id, 'created_at', p.created_at, 'deleted_at', p.deleted_at, 'text', p.text,
        'sentiment_score', p.sentiment_score, 'sentiment_label', p.sentiment_label,
        'platform', p.platform, 'city', p.city,
        'country', p.country, 'product', p.product, 'channel', p.channel, 'lang', p.lang)
$$;
