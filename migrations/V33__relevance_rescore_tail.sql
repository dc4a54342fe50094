-- A re-scoring's last pass: when the re-scoring began (a model adopted or a threshold set), and
-- whether its first pass over the stored posts is over. Posts stored while the processes still
-- matched with what they held before are newer than where the first pass began; once every
-- process has loaded the change, a last pass re-scores the posts stored since it began.
ALTER TABLE topic_relevance
    ADD COLUMN rescore_since TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN rescore_last  BOOLEAN NOT NULL DEFAULT false;
