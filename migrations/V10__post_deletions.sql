-- Deletions reported by producers (a platform's delete of a post): the post is kept, marked
-- with when it was deleted, left out of listings and taken back out of the rollups. A
-- deletion that arrives before its post is kept here, so the post is stored already deleted.
ALTER TABLE posts ADD COLUMN deleted_at TIMESTAMPTZ;

CREATE TABLE post_deletions (
    post_id     TEXT PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    stream_id   TEXT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX post_deletions_ingested_idx ON post_deletions (ingested_at);
