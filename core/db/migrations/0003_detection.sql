-- Incidents remember the last window applied to them and the alert it produced, so that re-running a
-- window neither counts its events twice nor alerts twice (the same idempotency key is produced again).
ALTER TABLE incidents ADD COLUMN last_window_start timestamptz;
ALTER TABLE incidents ADD COLUMN last_alert_window timestamptz;
ALTER TABLE incidents ADD COLUMN last_alert_key text;
CREATE INDEX incidents_open ON incidents (problem_id, app) WHERE closed_at IS NULL;
