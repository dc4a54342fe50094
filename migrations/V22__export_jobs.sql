-- Exports as jobs: a search's every match written in chunks that any process of the group
-- may continue, so an export outlives the process that started it. A job is held by one
-- process at a time (`worker` until `lease_until`); each chunk is committed with the job's
-- place (the last post written), so a process that takes a job over goes on from there and
-- writes nothing twice. A finished job's chunks are its file, served by any process through
-- a link with the job's token until `expires_at`; then the job and its chunks are removed.
CREATE TABLE export_jobs (
    id               BIGSERIAL PRIMARY KEY,
    -- The caller the job is budgeted to and visible to (an API key or a network).
    owner            TEXT NOT NULL,
    created_by       TEXT,
    -- The search as `GET /api/v1/search` takes it (`q`, `platform`, `topic`, `from`...).
    params           JSONB NOT NULL,
    format           TEXT NOT NULL CHECK (format IN ('csv', 'jsonl')),
    state            TEXT NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'done', 'failed')),
    token            TEXT NOT NULL,
    rows             BIGINT NOT NULL DEFAULT 0,
    bytes            BIGINT NOT NULL DEFAULT 0,
    chunks           INT NOT NULL DEFAULT 0,
    -- Where the job stands: every match newer than this (time, id) has been written.
    after_created_at TIMESTAMPTZ,
    after_id         TEXT,
    -- The oldest time the search may reach, for the progress by time.
    range_start      TIMESTAMPTZ,
    range_end        TIMESTAMPTZ NOT NULL,
    worker           TEXT,
    lease_until      TIMESTAMPTZ,
    -- Times a process took the job: one that keeps failing gives up after a few.
    attempts         INT NOT NULL DEFAULT 0,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ
);
CREATE INDEX export_jobs_open_idx ON export_jobs (id) WHERE state IN ('queued', 'running');
CREATE INDEX export_jobs_owner_idx ON export_jobs (owner, id);

-- A chunk of a job's file: its bytes, and for each post in it its id and where its row ends,
-- so a download leaves out the rows of posts deleted since.
CREATE TABLE export_chunks (
    job_id BIGINT NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    seq    INT NOT NULL,
    data   BYTEA NOT NULL,
    ids    TEXT[] NOT NULL,
    ends   INT[] NOT NULL,
    PRIMARY KEY (job_id, seq)
);
-- Exported text compresses, but compressing it costs the writer more than the disk saves.
ALTER TABLE export_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
