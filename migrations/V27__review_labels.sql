-- People's labels on posts (docs/review.md): whether a post is about a topic, its sentiment,
-- spam, tags and notes, each kept with who gave it and when. A label is never changed: a new
-- one supersedes the earlier one of the same kind (for `relevance`, of the same topic), and an
-- undone label keeps its row with who undid it and when, so every decision stays readable.
CREATE TABLE post_labels (
    id         BIGSERIAL PRIMARY KEY,
    post_id    TEXT NOT NULL,
    -- The topic a `relevance` label is about; NULL for the other kinds.
    topic_id   BIGINT REFERENCES topics (id),
    kind       TEXT NOT NULL CHECK (kind IN ('relevance', 'sentiment', 'spam', 'tag', 'note')),
    -- relevance: related | unrelated; sentiment: negative | neutral | positive;
    -- spam: spam | bot | not_spam; tag: the tag; note: the text.
    value      TEXT NOT NULL,
    reviewer   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    undone_at  TIMESTAMPTZ,
    undone_by  TEXT,
    CHECK ((kind = 'relevance') = (topic_id IS NOT NULL))
);
CREATE INDEX post_labels_post_idx ON post_labels (post_id, id);
CREATE INDEX post_labels_topic_idx ON post_labels (topic_id, id) WHERE topic_id IS NOT NULL;
CREATE INDEX post_labels_reviewer_idx ON post_labels (reviewer, id);

-- Topics the query matched and the topic's relevance (a reviewer's label, or its learned
-- model under the topic's threshold) left out: the post is kept and listed as filtered, and
-- counts in none of the topic's rollups.
ALTER TABLE posts ADD COLUMN filtered_topics BIGINT[];
CREATE INDEX posts_filtered_topics_idx ON posts USING gin (filtered_topics)
    WHERE filtered_topics IS NOT NULL;

-- The posts handed to reviewers: a post is handed to one reviewer at a time until the claim
-- expires or is released (the reviewer moved on), and the same reviewer is not handed it
-- again while its claim stands. `topic_id` 0: the queue of every post.
CREATE TABLE review_claims (
    post_id    TEXT NOT NULL,
    topic_id   BIGINT NOT NULL,
    reviewer   TEXT NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    released   BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (post_id, topic_id, reviewer)
);
CREATE INDEX review_claims_expiry_idx ON review_claims (expires_at);

-- Each topic's learned relevance: every model trained (kept, adopted or not, with what it was
-- measured against), and the topic's state: the adopted model, its threshold, the newest label
-- trained on, and how far re-scoring its stored posts got.
CREATE TABLE relevance_models (
    id              BIGSERIAL PRIMARY KEY,
    topic_id        BIGINT NOT NULL REFERENCES topics (id),
    labels          INT NOT NULL,
    related         INT NOT NULL,
    through_label   BIGINT NOT NULL,
    -- Out-of-fold accuracy of this model's training, and of what it was measured against (the
    -- adopted model's training on the labels it had, or the query alone) on the same folds.
    accuracy        REAL NOT NULL,
    incumbent       REAL NOT NULL,
    adopted         BOOLEAN NOT NULL,
    reason          TEXT NOT NULL,
    bias            REAL NOT NULL,
    -- Non-zero weights: (u32 index, f32 weight) pairs, little-endian.
    weights         BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX relevance_models_topic_idx ON relevance_models (topic_id, id);

CREATE TABLE topic_relevance (
    topic_id        BIGINT PRIMARY KEY REFERENCES topics (id),
    model_id        BIGINT REFERENCES relevance_models (id),
    threshold       REAL NOT NULL DEFAULT 0.5 CHECK (threshold > 0 AND threshold < 1),
    -- Relevance labels given and undone for the topic, counted as they commit, and the count
    -- its last training saw: a topic is trained again when they differ.
    changes         BIGINT NOT NULL DEFAULT 0,
    trained_changes BIGINT NOT NULL DEFAULT 0,
    -- The newest label its last training saw.
    trained_through BIGINT NOT NULL DEFAULT 0,
    -- Re-scoring the stored posts under the adopted model, newest first: the last post done
    -- (NULL: not started), and whether it is done.
    rescore_at      TIMESTAMPTZ,
    rescore_id      TEXT,
    rescore_done    BOOLEAN NOT NULL DEFAULT true,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
