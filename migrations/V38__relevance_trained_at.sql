-- When a topic's relevance was last trained: a topic is trained again at most once every
-- `topics.relevance_train_gap_ms`, however fast its labels are given and undone (each change
-- could otherwise be followed by a training round of its own).
ALTER TABLE topic_relevance ADD COLUMN trained_at TIMESTAMPTZ;
