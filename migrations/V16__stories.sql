-- Stories: what the posts are about, found live (docs/stories.md). A post's story is set when
-- it is stored, or later when the waiting posts it was among found a story, or when its story
-- was folded into an older one.
ALTER TABLE posts ADD COLUMN story_id BIGINT;
CREATE INDEX posts_story_idx ON posts (story_id, created_at) WHERE story_id IS NOT NULL;

CREATE TABLE stories (
    id          BIGINT PRIMARY KEY,
    -- A few words that name it, and its heaviest terms (heaviest first).
    label       TEXT NOT NULL,
    terms       TEXT[] NOT NULL,
    born_at     TIMESTAMPTZ NOT NULL,
    first_at    TIMESTAMPTZ NOT NULL,
    last_at     TIMESTAMPTZ NOT NULL,
    size        BIGINT NOT NULL,
    -- `live`, `faded`, or `merged` (its posts are `merged_into`'s now).
    status      TEXT NOT NULL CHECK (status IN ('live', 'faded', 'merged')),
    merged_into BIGINT,
    -- Ids of the posts closest to the centre when they joined, closest first.
    representatives TEXT[] NOT NULL DEFAULT '{}',
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stories_born_idx ON stories (born_at DESC);
CREATE INDEX stories_last_idx ON stories (last_at DESC);

-- Alert rules that watch stories: a story born (`new_story`) or growing fast (`story_surge`).
ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_kind_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_kind_check CHECK (kind IN
    ('negativity', 'churn', 'volume_spike', 'sentiment_dip', 'toxicity', 'new_story', 'story_surge'));
