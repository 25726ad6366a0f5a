-- The template each problem was grouped under in a window, stored with the window's sample, so the judging
-- of a stored window (detection + registries) can run apart from its reading: a fanned-out backfill counts
-- days in parallel child runs, then judges every window in time order, exactly as a serial backfill would.
ALTER TABLE window_problem_samples ADD COLUMN template text;
