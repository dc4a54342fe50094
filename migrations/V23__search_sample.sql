-- Posts fall into 256 buckets by a hash of their id. Facets over many matches count those of
-- the first few buckets and scale the counts up: a sample independent of the posts' time,
-- place and words (docs/search.md). The bucket is a second column of the search index, so the
-- index itself finds a sample's matches (the word's posts and the bucket's, intersected)
-- without visiting any other post; btree_gin lets a GIN index hold an integer.
CREATE EXTENSION IF NOT EXISTS btree_gin;
DROP INDEX posts_search_idx;
CREATE INDEX posts_search_idx ON posts USING gin (search, (hashtext(id) & 255))
    WHERE deleted_at IS NULL;
