-- The virality engine. One row per tracked cascade with its latest prediction (what the
-- trending endpoint ranks and what a restarted process rebuilds from), the history of
-- predictions per post, observed outcomes and corrected labels sent as feedback, momentum
-- by product and hashtag, and the virality thresholds learned from history.
CREATE TABLE virality_cascades (
    post_id                TEXT PRIMARY KEY,
    platform               TEXT,
    product                TEXT,
    channel                TEXT,
    city                   TEXT,
    country                TEXT,
    sentiment              TEXT,
    hashtags               TEXT[] NOT NULL DEFAULT '{}',
    author_followers       BIGINT NOT NULL DEFAULT 0,
    post_known             BOOLEAN NOT NULL DEFAULT false,
    created_at             TIMESTAMPTZ NOT NULL,
    observed_at            TIMESTAMPTZ NOT NULL,
    last_activity_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    status                 TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'finished')),
    shares                 BIGINT NOT NULL DEFAULT 0,
    likes                  BIGINT NOT NULL DEFAULT 0,
    comments               BIGINT NOT NULL DEFAULT 0,
    views                  BIGINT NOT NULL DEFAULT 0,
    reach                  BIGINT NOT NULL DEFAULT 0,
    depth                  INTEGER NOT NULL DEFAULT 0,
    breadth                BIGINT NOT NULL DEFAULT 0,
    structural_virality    DOUBLE PRECISION NOT NULL DEFAULT 0,
    velocity               DOUBLE PRECISION NOT NULL DEFAULT 0,
    acceleration           DOUBLE PRECISION NOT NULL DEFAULT 0,
    virality_score         DOUBLE PRECISION NOT NULL DEFAULT 0,
    virality_probability   DOUBLE PRECISION NOT NULL DEFAULT 0,
    viral                  BOOLEAN NOT NULL DEFAULT false,
    predicted_final_shares DOUBLE PRECISION NOT NULL DEFAULT 0,
    ci_lower               DOUBLE PRECISION NOT NULL DEFAULT 0,
    ci_upper               DOUBLE PRECISION NOT NULL DEFAULT 0,
    ci_level               DOUBLE PRECISION NOT NULL DEFAULT 0.9,
    threshold              DOUBLE PRECISION NOT NULL DEFAULT 0,
    branching              DOUBLE PRECISION NOT NULL DEFAULT 0,
    dynamics               TEXT NOT NULL DEFAULT 'broad' CHECK (dynamics IN ('deep', 'broad', 'hybrid')),
    model_name             TEXT NOT NULL,
    model_version          TEXT NOT NULL,
    params_hash            TEXT NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX virality_cascades_rank_idx ON virality_cascades (status, virality_score DESC, post_id);
CREATE INDEX virality_cascades_activity_idx ON virality_cascades (status, last_activity_at);
CREATE INDEX virality_cascades_finished_idx ON virality_cascades (platform, shares) WHERE status = 'finished';

-- The history of predictions of a post, appended when its score or predicted size moves.
CREATE TABLE virality_predictions (
    id                     BIGSERIAL PRIMARY KEY,
    post_id                TEXT NOT NULL,
    recorded_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    observed_at            TIMESTAMPTZ NOT NULL,
    age_secs               DOUBLE PRECISION NOT NULL,
    shares                 BIGINT NOT NULL,
    virality_score         DOUBLE PRECISION NOT NULL,
    virality_probability   DOUBLE PRECISION NOT NULL,
    viral                  BOOLEAN NOT NULL,
    predicted_final_shares DOUBLE PRECISION NOT NULL,
    ci_lower               DOUBLE PRECISION NOT NULL,
    ci_upper               DOUBLE PRECISION NOT NULL,
    dynamics               TEXT NOT NULL,
    structural_virality    DOUBLE PRECISION NOT NULL,
    velocity               DOUBLE PRECISION NOT NULL,
    acceleration           DOUBLE PRECISION NOT NULL,
    params_hash            TEXT NOT NULL
);

CREATE INDEX virality_predictions_post_idx ON virality_predictions (post_id, id);

-- Observed outcomes and corrected sentiment labels, for evaluation and threshold learning.
CREATE TABLE virality_feedback (
    id              BIGSERIAL PRIMARY KEY,
    post_id         TEXT NOT NULL,
    final_shares    BIGINT CHECK (final_shares >= 0),
    final_likes     BIGINT CHECK (final_likes >= 0),
    final_comments  BIGINT CHECK (final_comments >= 0),
    final_views     BIGINT CHECK (final_views >= 0),
    sentiment_label TEXT CHECK (sentiment_label IN ('negative', 'neutral', 'positive')),
    note            TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX virality_feedback_post_idx ON virality_feedback (post_id, id);

-- Engagement momentum by product and hashtag, refreshed by the virality tracker.
CREATE TABLE virality_momentum (
    dimension    TEXT NOT NULL CHECK (dimension IN ('product', 'hashtag')),
    key          TEXT NOT NULL,
    velocity     DOUBLE PRECISION NOT NULL,
    acceleration DOUBLE PRECISION NOT NULL,
    posts        BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (dimension, key)
);
