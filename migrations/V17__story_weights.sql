-- A story's terms' weights in its centre (same order as `terms`, relative to the heaviest), so
-- a process that starts, or restarts, takes the live stories in and its posts join them under
-- their ids.
ALTER TABLE stories ADD COLUMN weights REAL[] NOT NULL DEFAULT '{}';
