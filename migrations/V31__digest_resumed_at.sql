-- When a digest schedule was last turned back on after a pause. Its periods that ended before
-- then are not made: they ended while it was paused, not while Pulse was down, and made on
-- resuming each would go to every channel as late.
ALTER TABLE digest_schedules ADD COLUMN resumed_at TIMESTAMPTZ;
