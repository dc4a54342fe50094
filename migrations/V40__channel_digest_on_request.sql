-- When a channel was last sent a digest on request, by any schedule: one such digest a minute
-- reaches a channel, however many schedules name it and however often they are made anew.
ALTER TABLE webhooks ADD COLUMN digest_sent_on_request_at TIMESTAMPTZ;
