-- What a registry refresh asked of every stored window of each problem, kept with its running totals by the
-- same triggers: first and last occurrence, the latest window that holds it and the one before that. A refresh
-- (every window, every problem in it) then reads one row instead of four index lookups per problem; the
-- lookups move to deletes (re-runs, folds, retention), which recompute them for the problems they touched.
ALTER TABLE problem_totals ADD COLUMN first_seen timestamptz;     -- min(first_ts)
ALTER TABLE problem_totals ADD COLUMN last_seen timestamptz;      -- max(last_ts)
ALTER TABLE problem_totals ADD COLUMN latest_window timestamptz;  -- max(window_start)
ALTER TABLE problem_totals ADD COLUMN previous_window timestamptz; -- max(window_start) below latest_window

UPDATE problem_totals t SET first_seen = s.first_seen, last_seen = s.last_seen, latest_window = s.latest_window,
                            previous_window = s.windows[2]
    FROM (SELECT problem_id, min(first_ts) AS first_seen, max(last_ts) AS last_seen,
                 max(window_start) AS latest_window, array_agg(window_start ORDER BY window_start DESC) AS windows
          FROM window_problem_samples GROUP BY problem_id) s
    WHERE s.problem_id = t.problem_id;

CREATE OR REPLACE FUNCTION problem_totals_apply() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- rows ordered by key: concurrent windows lock the same totals in the same order (no deadlock)
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO problem_totals AS t (problem_id, events, windows)
            SELECT problem_id, -sum(count), -count(*) FROM old_rows GROUP BY problem_id ORDER BY problem_id
            ON CONFLICT (problem_id) DO UPDATE SET events = t.events + EXCLUDED.events,
                                                   windows = t.windows + EXCLUDED.windows;
        INSERT INTO problem_app_windows AS t (problem_id, app, windows)
            SELECT problem_id, a, -count(*) FROM old_rows, unnest(apps) a GROUP BY problem_id, a ORDER BY problem_id, a
            ON CONFLICT (problem_id, app) DO UPDATE SET windows = t.windows + EXCLUDED.windows;
        -- a deleted row may have held an extreme: read them again from what is stored now
        UPDATE problem_totals t SET
                first_seen = (SELECT min(s.first_ts) FROM window_problem_samples s WHERE s.problem_id = t.problem_id),
                last_seen = (SELECT max(s.last_ts) FROM window_problem_samples s WHERE s.problem_id = t.problem_id),
                latest_window = (SELECT max(s.window_start) FROM window_problem_samples s
                                 WHERE s.problem_id = t.problem_id)
            WHERE t.problem_id IN (SELECT problem_id FROM old_rows);
        UPDATE problem_totals t SET
                previous_window = (SELECT max(s.window_start) FROM window_problem_samples s
                                   WHERE s.problem_id = t.problem_id AND s.window_start < t.latest_window)
            WHERE t.problem_id IN (SELECT problem_id FROM old_rows);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO problem_totals AS t (problem_id, events, windows, first_seen, last_seen, latest_window,
                                         previous_window)
            SELECT problem_id, sum(count), count(*), min(first_ts), max(last_ts), max(window_start),
                   (array_agg(window_start ORDER BY window_start DESC))[2]
            FROM new_rows GROUP BY problem_id ORDER BY problem_id
            ON CONFLICT (problem_id) DO UPDATE SET
                events = t.events + EXCLUDED.events, windows = t.windows + EXCLUDED.windows,
                first_seen = LEAST(t.first_seen, EXCLUDED.first_seen),
                last_seen = GREATEST(t.last_seen, EXCLUDED.last_seen),
                latest_window = GREATEST(t.latest_window, EXCLUDED.latest_window),
                -- the second latest of both sets is the latest of what lies below the latest of all
                previous_window = (SELECT max(w) FROM unnest(ARRAY[t.latest_window, t.previous_window,
                                                                   EXCLUDED.latest_window, EXCLUDED.previous_window]) w
                                   WHERE w < GREATEST(t.latest_window, EXCLUDED.latest_window));
        INSERT INTO problem_app_windows AS t (problem_id, app, windows)
            SELECT problem_id, a, count(*) FROM new_rows, unnest(apps) a GROUP BY problem_id, a ORDER BY problem_id, a
            ON CONFLICT (problem_id, app) DO UPDATE SET windows = t.windows + EXCLUDED.windows;
    END IF;
    RETURN NULL;
END $$;
