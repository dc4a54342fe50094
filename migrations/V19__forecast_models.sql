-- Reach-forecast models refitted on a platform's own finished cascades, and how they ranked
-- those cascades out of fold beside the model they replace; a forecast on the platform uses
-- the row's model when `adopted`.
CREATE TABLE forecast_models (
    platform          TEXT PRIMARY KEY,
    model             JSONB NOT NULL,
    adopted           BOOLEAN NOT NULL,
    cascades          INT8 NOT NULL,
    spearman          FLOAT8,
    replaced_spearman FLOAT8,
    fitted_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
