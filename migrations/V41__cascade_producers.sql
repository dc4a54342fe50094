-- The producer of each cascade's post: a producer's viral threshold is learned from its own
-- finished cascades, so one producer's cascades cannot move the bar another's are judged by.
-- NULL while the post is not known; cascades finished before producers were recorded here
-- take their post's producer where the post is still stored, else `stream`, the producer of
-- every entry before producers were recorded at all.
ALTER TABLE virality_cascades ADD COLUMN producer TEXT;
UPDATE virality_cascades c SET producer = p.producer FROM posts p WHERE p.id = c.post_id;
UPDATE virality_cascades SET producer = 'stream' WHERE producer IS NULL AND post_known;

-- Each producer's most recent finished cascades on a platform, and the distinct producers.
CREATE INDEX virality_cascades_producer_finished_idx
    ON virality_cascades (platform, producer, last_activity_at DESC) WHERE status = 'finished';
