-- Posts with their analysis. The producer's post id is the natural key, so a replayed stream
-- entry (at-least-once delivery) can never create a second row.
CREATE TABLE posts (
    id               TEXT PRIMARY KEY,
    platform         TEXT NOT NULL,
    author_id        TEXT NOT NULL,
    author_followers BIGINT NOT NULL,
    text             TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    lang             TEXT,
    city             TEXT,
    country          TEXT,
    product          TEXT,
    channel          TEXT,
    parent_id        TEXT,
    url              TEXT,
    likes            BIGINT,
    shares           BIGINT,
    comments         BIGINT,
    views            BIGINT,
    sentiment_label  TEXT NOT NULL CHECK (sentiment_label IN ('negative', 'neutral', 'positive')),
    sentiment_score  REAL NOT NULL CHECK (sentiment_score BETWEEN -1 AND 1),
    emotions         JSONB NOT NULL,
    emotion          TEXT,
    toxicity         REAL NOT NULL CHECK (toxicity BETWEEN 0 AND 1),
    churn_risk       REAL NOT NULL CHECK (churn_risk BETWEEN 0 AND 1),
    model            TEXT NOT NULL,
    stream_id        TEXT NOT NULL,
    ingested_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Listing newest first (keyset pagination on created_at, id) with optional filters, and
-- retention deleting the oldest.
CREATE INDEX posts_created_idx ON posts (created_at DESC, id DESC);
CREATE INDEX posts_platform_created_idx ON posts (platform, created_at DESC);
CREATE INDEX posts_product_created_idx ON posts (product, created_at DESC) WHERE product IS NOT NULL;
CREATE INDEX posts_sentiment_created_idx ON posts (sentiment_label, created_at DESC);

-- Engagement events. The key is the producer's id when it sends one, else the stream entry
-- id, so the same entry delivered twice yields one row.
CREATE TABLE engagements (
    key             TEXT PRIMARY KEY,
    post_id         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('like', 'share', 'comment', 'view')),
    at              TIMESTAMPTZ NOT NULL,
    actor_followers BIGINT,
    via             TEXT,
    count           INTEGER NOT NULL DEFAULT 1 CHECK (count > 0),
    stream_id       TEXT NOT NULL,
    ingested_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX engagements_post_at_idx ON engagements (post_id, at);
CREATE INDEX engagements_at_idx ON engagements (at);
