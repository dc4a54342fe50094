-- Authors' track records for reach forecasts: the final shares of each author's most recent
-- finished cascades, keyed by post id so that recording a cascade again changes nothing.
CREATE TABLE author_records (
    platform   TEXT NOT NULL,
    author_id  TEXT NOT NULL,
    -- post id -> [final shares, the post's creation in Unix seconds]
    finals     JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, author_id)
);

-- How far the recording has read finished cascades, in (updated_at, post_id) order.
CREATE TABLE author_records_position (
    singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    updated_at TIMESTAMPTZ NOT NULL,
    post_id    TEXT NOT NULL
);

-- Only finished rows enter it, so the live cascades' updates never touch it.
CREATE INDEX virality_cascades_finished_order_idx
    ON virality_cascades (updated_at, post_id) WHERE status = 'finished';
