-- Per window and problem: its total and applications, so registry refreshes read one row per window
-- instead of every per-minute count of the problem's whole history.
ALTER TABLE window_problem_samples ADD COLUMN count integer NOT NULL DEFAULT 0;
ALTER TABLE window_problem_samples ADD COLUMN apps text[] NOT NULL DEFAULT '{}';
CREATE INDEX window_problem_samples_problem ON window_problem_samples (problem_id, window_start);
-- Per window, problem and application: the window's total (detection history reads these, not minutes).
CREATE TABLE window_totals (
    window_start  timestamptz NOT NULL,
    problem_id    text NOT NULL,
    app           text NOT NULL,
    count         integer NOT NULL,
    PRIMARY KEY (problem_id, app, window_start)
);
CREATE INDEX window_totals_window ON window_totals (window_start);
