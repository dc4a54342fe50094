-- The virality tracker runs in one process at a time and reads committed engagements from
-- here, whichever process committed them. Each row records the id of the transaction that
-- inserted it; the tracker reads the rows of transactions that have all ended (below the
-- oldest one still running), in ranges, so it reads every committed row once however
-- commits interleave. Rows from before this migration have no id and count for rebuilds
-- only. Adding the column without a default and setting the default afterwards leaves
-- existing rows untouched (no table rewrite).
ALTER TABLE engagements ADD COLUMN tx xid8;
ALTER TABLE engagements ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX engagements_tx_idx ON engagements (tx);

-- Where the tracker's feed stands: every engagement of a transaction below `position` is
-- accounted for in virality_cascades. Written in the same transaction as the cascades, so a
-- process taking the tracker over resumes exactly there.
CREATE TABLE virality_feed (
    id         BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    position   xid8 NOT NULL,
    holder     TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
