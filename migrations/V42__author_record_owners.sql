-- The producer an author's track record belongs to: the one whose post by the author was the
-- first recorded. Another producer's cascades join the record only where `ingest.producer_trust`
-- lets it act for that one, so a producer posting under someone else's author id cannot move
-- their forecasts. Records from before take the producer of their earliest post still stored;
-- one whose posts are all gone stays NULL and goes to the next producer recorded in it.
ALTER TABLE author_records ADD COLUMN producer TEXT;
UPDATE author_records r SET producer = (
    SELECT p.producer
    FROM jsonb_each(r.finals) e
    JOIN posts p ON p.id = e.key
    ORDER BY (e.value->>1)::float8, e.key
    LIMIT 1);
