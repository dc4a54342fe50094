-- The language of every post and how far its analysis can be trusted. `lang` now holds the
-- resolved language (the producer's tag, else the detected one); `lang_source` says which.
-- Posts whose language no model understands are kept, flagged `unsupported`, and counted only
-- under the `language` and `support` rollup dimensions, never in the sentiment aggregates.
ALTER TABLE posts
    ADD COLUMN lang_source TEXT NOT NULL DEFAULT 'given'
        CHECK (lang_source IN ('given', 'detected', 'unsure', 'unknown')),
    ADD COLUMN language_support TEXT NOT NULL DEFAULT 'supported'
        CHECK (language_support IN ('supported', 'unverified', 'unsupported'));

CREATE INDEX posts_lang_created_idx ON posts (lang, created_at DESC) WHERE lang IS NOT NULL;

ALTER TABLE metric_rollups DROP CONSTRAINT metric_rollups_dimension_check;
ALTER TABLE metric_rollups ADD CONSTRAINT metric_rollups_dimension_check
    CHECK (dimension IN ('overall', 'platform', 'city', 'country', 'product', 'channel', 'language', 'support'));

ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_dimension_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_dimension_check
    CHECK (dimension IN ('overall', 'platform', 'city', 'country', 'product', 'channel', 'language', 'support'));
