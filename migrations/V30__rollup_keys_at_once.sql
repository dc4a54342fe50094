-- Rollup keys of many dimensions and days admitted in one statement. `admit_rollup_keys` (V14)
-- takes one dimension and day a call and answers with every key admitted that day: a batch
-- whose posts fall on many days paid a round trip per dimension and day, and up to the cap of
-- rows for each, every batch.
--
-- The groups (dimension and day) are `p_dimensions[i]` and `p_days[i]`; `p_keys` are the keys
-- asked about, each of the group numbered `p_groups` (from 1), the most wanted of a group
-- first. Each group is admitted as `admit_rollup_keys` does, under the same advisory lock, so
-- both functions can run side by side and the cap still holds for the group of processes.
-- The locks are held to the end of the statement, so the groups are taken in one order
-- whatever the caller's (by dimension, then day): two statements never wait for each other
-- crosswise.
--
-- The answer, per group: while the day holds fewer than `p_cap` keys, the keys asked about
-- (all of them admitted); once it holds its cap, every key admitted that day, with `day_full`,
-- so a process that remembers the day knows that no other key of it will ever be admitted.
CREATE FUNCTION admit_rollup_keys_at_once(
    p_dimensions TEXT[], p_days DATE[], p_groups INT[], p_keys TEXT[], p_cap INT)
RETURNS TABLE (group_no INT, admitted_key TEXT, day_full BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
    g RECORD;
    held INT;
    added INT;
BEGIN
    FOR g IN
        SELECT s.n::INT AS n, s.dimension, s.day
        FROM unnest(p_dimensions, p_days) WITH ORDINALITY AS s(dimension, day, n)
        ORDER BY s.dimension, s.day
    LOOP
        PERFORM pg_advisory_xact_lock(
            hashtextextended('rollup_keys/' || g.dimension || '/' || g.day, 0));
        SELECT count(*) INTO held FROM rollup_keys r
        WHERE r.dimension = g.dimension AND r.day = g.day;
        added := 0;
        IF held < p_cap THEN
            INSERT INTO rollup_keys (dimension, day, key)
            SELECT g.dimension, g.day, u.k
            FROM unnest(p_groups, p_keys) WITH ORDINALITY AS u(grp, k, n)
            WHERE u.grp = g.n
              AND NOT EXISTS (SELECT 1 FROM rollup_keys r
                              WHERE r.dimension = g.dimension AND r.day = g.day AND r.key = u.k)
            ORDER BY u.n
            LIMIT p_cap - held
            ON CONFLICT DO NOTHING;
            GET DIAGNOSTICS added = ROW_COUNT;
        END IF;
        IF held + added >= p_cap THEN
            RETURN QUERY
                SELECT g.n, r.key, true
                FROM rollup_keys r
                WHERE r.dimension = g.dimension AND r.day = g.day;
        ELSE
            RETURN QUERY
                SELECT g.n, r.key, false
                FROM unnest(p_groups, p_keys) AS u(grp, k)
                JOIN rollup_keys r
                  ON r.dimension = g.dimension AND r.day = g.day AND r.key = u.k
                WHERE u.grp = g.n;
        END IF;
    END LOOP;
END
$$;
