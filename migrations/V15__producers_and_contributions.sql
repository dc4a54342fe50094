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

-- What post `p` adds to the rollups (`p_sign` 1) or takes back out of them (-1): one row per
-- dimension and key it counts under, in the minute it was created. A post in a language no
-- model understands counts only under `language` and `support`, with no scores. The store,
-- the deletion paths and the filtered metrics all read a post's contribution from here, so a
-- dimension cannot be counted by one and not the others.
CREATE FUNCTION post_rollup_deltas(p posts, p_sign INT, p_high_churn REAL)
RETURNS TABLE (minute TIMESTAMPTZ, dimension TEXT, key TEXT, posts INT, sentiment_sum FLOAT8,
               negative INT, neutral INT, positive INT, toxicity_sum FLOAT8, churn_sum FLOAT8,
               high_churn INT, anger INT, joy INT, optimism INT, sadness INT,
               likes INT8, shares INT8, comments INT8, views INT8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_trunc('minute', p.created_at), d.dimension, d.key,
           p_sign, w.w * p_sign * p.sentiment_score::float8,
           w.w * p_sign * (p.sentiment_label = 'negative')::int,
           w.w * p_sign * (p.sentiment_label = 'neutral')::int,
           w.w * p_sign * (p.sentiment_label = 'positive')::int,
           w.w * p_sign * p.toxicity::float8, w.w * p_sign * p.churn_risk::float8,
           w.w * p_sign * (p.churn_risk >= p_high_churn)::int,
           w.w * p_sign * (p.emotion IS NOT DISTINCT FROM 'anger')::int,
           w.w * p_sign * (p.emotion IS NOT DISTINCT FROM 'joy')::int,
           w.w * p_sign * (p.emotion IS NOT DISTINCT FROM 'optimism')::int,
           w.w * p_sign * (p.emotion IS NOT DISTINCT FROM 'sadness')::int,
           0::int8, 0::int8, 0::int8, 0::int8
    FROM (SELECT (p.language_support <> 'unsupported')::int AS w) AS w
    CROSS JOIN LATERAL (VALUES
        ('overall', ''), ('platform', p.platform),
        ('city', rollup_key('city', p.city, p.rollup_other)),
        ('country', rollup_key('country', p.country, p.rollup_other)),
        ('product', rollup_key('product', p.product, p.rollup_other)),
        ('channel', rollup_key('channel', p.channel, p.rollup_other)),
        ('language', rollup_key('language', COALESCE(p.lang, 'und'), p.rollup_other)),
        ('support', p.language_support)) AS d (dimension, key)
    WHERE d.key IS NOT NULL AND (w.w = 1 OR d.dimension IN ('language', 'support'))
$$;

-- What engagement `e` on post `p` adds to the rollups (`p_sign` 1) or takes back out (-1):
-- its count, in the minute it happened, under the post's keys. Only an engagement that is not
-- held, on a post that is not deleted, counts; the callers choose those rows.
CREATE FUNCTION engagement_rollup_deltas(e engagements, p posts, p_sign INT)
RETURNS TABLE (minute TIMESTAMPTZ, dimension TEXT, key TEXT, posts INT, sentiment_sum FLOAT8,
               negative INT, neutral INT, positive INT, toxicity_sum FLOAT8, churn_sum FLOAT8,
               high_churn INT, anger INT, joy INT, optimism INT, sadness INT,
               likes INT8, shares INT8, comments INT8, views INT8)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_trunc('minute', e.at), d.dimension, d.key,
           0, 0::float8, 0, 0, 0, 0::float8, 0::float8, 0, 0, 0, 0, 0,
           p_sign * CASE WHEN e.kind = 'like' THEN e.count ELSE 0 END::int8,
           p_sign * CASE WHEN e.kind = 'share' THEN e.count ELSE 0 END::int8,
           p_sign * CASE WHEN e.kind = 'comment' THEN e.count ELSE 0 END::int8,
           p_sign * CASE WHEN e.kind = 'view' THEN e.count ELSE 0 END::int8
    FROM (VALUES
        ('overall', ''), ('platform', p.platform),
        ('city', rollup_key('city', p.city, p.rollup_other)),
        ('country', rollup_key('country', p.country, p.rollup_other)),
        ('product', rollup_key('product', p.product, p.rollup_other)),
        ('channel', rollup_key('channel', p.channel, p.rollup_other))) AS d (dimension, key)
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
