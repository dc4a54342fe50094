-- What processes poll to know their topics changed: one row whose revision each change a
-- matcher or a relevance filter follows moves, in the change's own transaction. Moved under the
-- row's lock, it grows in the order changes commit; read as one row, it costs the same however
-- many topics were ever made. It replaces the sum of every topic's own revision, which read
-- every row ever created, deleted ones included, in every process each `topics.refresh_ms`, and
-- which would go back to a value once seen when a deleted topic's row is purged.
CREATE TABLE topic_changes (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    revision BIGINT NOT NULL
);
-- Above 0 whenever there are topics: a process starts at 0 and so loads them at its first look.
INSERT INTO topic_changes (revision) SELECT COALESCE(max(revision), 0) FROM topics;
DROP INDEX topics_revision_idx;
ALTER TABLE topics DROP COLUMN revision;
DROP SEQUENCE topic_revisions;

-- A deleted topic's rows are purged once nothing names it (`db::topics::purge_deleted`): its
-- re-taggings go with it, found by topic.
CREATE INDEX topic_retags_topic_idx ON topic_retags (topic_id);
