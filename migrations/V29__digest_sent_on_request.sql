-- When a schedule's digest was last sent on request (`POST .../send`): the claim that lets one
-- such send a minute through, whichever process and caller ask, since each goes to every
-- channel of the schedule.
ALTER TABLE digest_schedules ADD COLUMN sent_on_request_at TIMESTAMPTZ;
