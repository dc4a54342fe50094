-- A key made by rotating another speaks as the producer the first key of its line spoke as,
-- so the posts stored under the old key stay its own (deletions, engagements).
ALTER TABLE api_keys ADD COLUMN speaks_as text;
