-- An alert's evidence quotes at most the first 1,000 characters of each post, the last an
-- ellipsis when cut (`EVIDENCE_TEXT_CHARS`): alerts fired before kept whole texts, up to
-- 20,000 bytes each, five an alert, and a page of the alert list read 500 alerts at once.
UPDATE alerts a SET evidence = jsonb_set(a.evidence, '{top_posts}', (
    SELECT jsonb_agg(CASE WHEN length(e.post->>'text') > 1000
                          THEN jsonb_set(e.post, '{text}', to_jsonb(left(e.post->>'text', 999) || '…'))
                          ELSE e.post END ORDER BY e.n)
    FROM jsonb_array_elements(a.evidence->'top_posts') WITH ORDINALITY AS e (post, n)))
WHERE jsonb_typeof(a.evidence->'top_posts') = 'array'
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(a.evidence->'top_posts') AS p (post)
              WHERE length(p.post->>'text') > 1000);
