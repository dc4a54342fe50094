-- One feedback row per post: a report on a post that already has one updates it, each value
-- given replacing the one stored and each value left out keeping it. Until now every report
-- added a row, so repeating one (a note of 2,000 bytes each time) grew the table without
-- bound, and learning the viral thresholds read back through a post's rows for its latest
-- final shares.
--
-- The rows already stored become one per post, holding the latest of each value given (what
-- the thresholds read: the latest final shares reported), in the post's latest row, created
-- when its first was and updated when its latest was.

-- The time of the latest report, which retention ages the row by.
ALTER TABLE virality_feedback ADD COLUMN updated_at TIMESTAMPTZ;
UPDATE virality_feedback SET updated_at = created_at;
ALTER TABLE virality_feedback ALTER COLUMN updated_at SET DEFAULT now(),
    ALTER COLUMN updated_at SET NOT NULL;

UPDATE virality_feedback f SET
    final_shares = (SELECT g.final_shares FROM virality_feedback g
                    WHERE g.post_id = f.post_id AND g.final_shares IS NOT NULL
                    ORDER BY g.id DESC LIMIT 1),
    final_likes = (SELECT g.final_likes FROM virality_feedback g
                   WHERE g.post_id = f.post_id AND g.final_likes IS NOT NULL
                   ORDER BY g.id DESC LIMIT 1),
    final_comments = (SELECT g.final_comments FROM virality_feedback g
                      WHERE g.post_id = f.post_id AND g.final_comments IS NOT NULL
                      ORDER BY g.id DESC LIMIT 1),
    final_views = (SELECT g.final_views FROM virality_feedback g
                   WHERE g.post_id = f.post_id AND g.final_views IS NOT NULL
                   ORDER BY g.id DESC LIMIT 1),
    sentiment_label = (SELECT g.sentiment_label FROM virality_feedback g
                       WHERE g.post_id = f.post_id AND g.sentiment_label IS NOT NULL
                       ORDER BY g.id DESC LIMIT 1),
    note = (SELECT g.note FROM virality_feedback g
            WHERE g.post_id = f.post_id AND g.note IS NOT NULL
            ORDER BY g.id DESC LIMIT 1),
    created_at = (SELECT min(g.created_at) FROM virality_feedback g WHERE g.post_id = f.post_id)
WHERE f.id IN (SELECT max(id) FROM virality_feedback GROUP BY post_id HAVING count(*) > 1);

DELETE FROM virality_feedback f
WHERE EXISTS (SELECT 1 FROM virality_feedback g WHERE g.post_id = f.post_id AND g.id > f.id);

DROP INDEX virality_feedback_post_idx;
ALTER TABLE virality_feedback ADD CONSTRAINT virality_feedback_post_key UNIQUE (post_id);

CREATE INDEX virality_feedback_updated_idx ON virality_feedback (updated_at);
