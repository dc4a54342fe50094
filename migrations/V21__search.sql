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

