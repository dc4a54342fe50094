-- Bounded cardinality of the rollups. Producers name cities, countries, products, channels and
-- languages freely; a producer that names a new one in every post would make one rollup row per
-- post and minute, which every aggregate then reads. Each of those dimensions admits at most
-- `metrics.max_keys_per_dimension` keys per day (`rollup_keys`); a post whose key came later
-- that day is counted under the key '(other)'. The decision is made once, when the post is
-- stored, and kept with it (`posts.rollup_other`, one bit per dimension), so a deletion takes
-- the post back out of exactly the rows it was counted in, and its engagements count there too.
CREATE TABLE rollup_keys (
    dimension TEXT NOT NULL,
    day       DATE NOT NULL,
    key       TEXT NOT NULL,
    PRIMARY KEY (day, dimension, key)
);

ALTER TABLE posts ADD COLUMN rollup_other SMALLINT NOT NULL DEFAULT 0;

-- The rollup key of a post's `key` of `dimension`, given its `rollup_other` bits: the one place
-- the bits are read (the store's statement and the deletion sweeper both call it).
CREATE FUNCTION rollup_key(dimension TEXT, key TEXT, other SMALLINT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN key IS NOT NULL AND (other & CASE dimension
            WHEN 'city' THEN 1 WHEN 'country' THEN 2 WHEN 'product' THEN 4
            WHEN 'channel' THEN 8 WHEN 'language' THEN 16 ELSE 0 END) <> 0
        THEN '(other)'
        ELSE key
    END
$$;

-- Admits `keys` (most wanted first) to `dimension`'s keys of `day` while it holds fewer than
-- `cap`, and returns every key admitted that day. Processes admitting at once take turns (a
-- transaction-scoped advisory lock per dimension and day), so the cap holds for the group.
CREATE FUNCTION admit_rollup_keys(p_dimension TEXT, p_day DATE, p_keys TEXT[], p_cap INT)
RETURNS SETOF TEXT LANGUAGE plpgsql AS $$
DECLARE
    held INT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('rollup_keys/' || p_dimension || '/' || p_day, 0));
    SELECT count(*) INTO held FROM rollup_keys WHERE dimension = p_dimension AND day = p_day;
    IF held < p_cap THEN
        INSERT INTO rollup_keys (dimension, day, key)
        SELECT p_dimension, p_day, u.k
        FROM unnest(p_keys) WITH ORDINALITY AS u(k, n)
        WHERE NOT EXISTS (SELECT 1 FROM rollup_keys r
                          WHERE r.dimension = p_dimension AND r.day = p_day AND r.key = u.k)
        ORDER BY u.n
        LIMIT p_cap - held
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN QUERY SELECT r.key FROM rollup_keys r WHERE r.dimension = p_dimension AND r.day = p_day;
END
$$;
