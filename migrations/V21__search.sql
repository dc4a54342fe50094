-- Search: every post carries a vector of what it holds (its folded words, hashtags and handles
-- at their positions, and its fields as `=field:value`), written by Pulse itself as it stores
-- the post, so the index reads text exactly as topics do (docs/search.md). A post whose text a
-- vector cannot hold exactly holds the lexeme `!` as well, and a search checks it one by one.
--
-- Posts stored before this migration have no vector (NULL) until the search indexer has
-- written one; a search checks them one by one too, so nothing is missed meanwhile.
ALTER TABLE posts ADD COLUMN search tsvector;

CREATE INDEX posts_search_idx ON posts USING gin (search) WHERE deleted_at IS NULL;
CREATE INDEX posts_unindexed_idx ON posts (created_at DESC, id DESC)
    WHERE search IS NULL AND deleted_at IS NULL;


-- A search with a name, to run again, share with the team or turn into a topic.
CREATE TABLE saved_searches (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    query      TEXT NOT NULL,
    -- The search's filters as `GET /api/v1/search` takes them (`platform`, `topic`, `from`...).
    filters    JSONB NOT NULL DEFAULT '{}',
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX saved_searches_name_idx ON saved_searches (lower(name));
