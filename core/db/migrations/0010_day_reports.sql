-- The day's report as the backfill wrote it: a later run in another pod (publish, re-publish) reads it from
-- here, never from a file a previous pod left behind.
CREATE TABLE day_reports (
    day         date PRIMARY KEY,
    report      jsonb NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now(),
    run_id      text
);
