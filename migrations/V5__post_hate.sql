-- Hate speech probability, kept apart from general toxicity: trust-and-safety teams act on
-- the two differently. Rows analysed before this column existed read 0.
ALTER TABLE posts ADD COLUMN hate real NOT NULL DEFAULT 0;
