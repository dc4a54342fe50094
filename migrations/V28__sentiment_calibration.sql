-- Sentiment calibrated per deployment (docs/review.md#sentiment-calibration): every adaptation
-- trained on reviewers' sentiment labels is kept, adopted or not, with what it was measured
-- against, and one row of state says which is in use (NULL: the shipped models as they are).
CREATE TABLE sentiment_calibrations (
    id              BIGSERIAL PRIMARY KEY,
    labels          INT NOT NULL,
    through_label   BIGINT NOT NULL,
    -- Out-of-fold macro-recall of this calibration, and of the shipped models on the same labels.
    macro_recall    REAL NOT NULL,
    shipped         REAL NOT NULL,
    -- Whether it beat the shipped models out of fold: only such a calibration is ever put in use.
    better          BOOLEAN NOT NULL,
    reason          TEXT NOT NULL,
    -- The shipped models it adapts, and their adapters (JSON); none for one not trained.
    models          TEXT[] NOT NULL,
    adapters        BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sentiment_calibration_state (
    only_row        BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    active_id       BIGINT REFERENCES sentiment_calibrations (id),
    -- Whether each calibration that beats the shipped models is put in use as it is trained;
    -- choosing one (or none) by hand turns this off until it is turned on again.
    automatic       BOOLEAN NOT NULL DEFAULT true,
    -- Moves with every change of the calibration in use, so each process loads it again.
    revision        BIGINT NOT NULL DEFAULT 0,
    -- Sentiment labels given and undone, counted as they commit, and the count the last training
    -- saw: a calibration is trained again when they differ.
    changes         BIGINT NOT NULL DEFAULT 0,
    trained_changes BIGINT NOT NULL DEFAULT 0,
    -- A process training holds this lease, so one trains at a time without a lock held while
    -- the model reads the labelled posts; an expired lease is taken over.
    training_until  TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by      TEXT
);
INSERT INTO sentiment_calibration_state DEFAULT VALUES;
