-- When a topic's relevance was last trained: a topic is trained again at most once every
-- `topics.relevance_train_gap_ms`, however fast its labels are given and undone (each change
-- could otherwise be followed by a training round of its own).
ALTER TABLE topic_relevance ADD COLUMN trained_at TIMESTAMPTZ;

-- A post now gives a topic's relevance at most its first 256 distinct features, links' hosts
-- first: a model adopted before read long posts otherwise. Each topic with an adopted model
-- trains once more (counted as one label change), so a model that reads as it is used is
-- adopted when it does better out of fold.
UPDATE topic_relevance SET changes = changes + 1 WHERE model_id IS NOT NULL;
