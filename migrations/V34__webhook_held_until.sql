-- Until when a channel sends nothing: its receiver asked for a wait (a 429 or 503 with
-- Retry-After, or a spent rate-limit window). Kept on the channel rather than in the refused
-- delivery's schedule, so the wait lasts what the receiver asked, however far that delivery's
-- own backoff puts its next attempt, and holds the deliveries queued during it as well.
ALTER TABLE webhooks ADD COLUMN held_until TIMESTAMPTZ;

-- A wait asked before this column: a delivery refused with 429 and not due yet held its channel.
UPDATE webhooks w SET held_until = h.until
FROM (SELECT webhook_id, max(next_attempt_at) AS until FROM webhook_deliveries
      WHERE status = 'pending' AND last_status = 429 AND next_attempt_at > now()
      GROUP BY webhook_id) h
WHERE h.webhook_id = w.id;
