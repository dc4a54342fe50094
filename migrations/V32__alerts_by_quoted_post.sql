-- The alerts whose evidence quotes a post, found by the post's id: a deletion looks them up
-- among every alert fired since the post's own date, which its producer chose (a post dated
-- 1970 and then deleted read every alert's evidence, once per deletion).
CREATE INDEX alerts_quoted_posts_idx ON alerts
    USING gin (jsonb_path_query_array(evidence, '$.top_posts[*].id'));
