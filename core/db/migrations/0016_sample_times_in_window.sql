-- A window's sample row holds the times of its first and last event clamped into the window (tasks/counting: an
-- event the source gave for a window counts in it, in its first or last minute when its own timestamp lies
-- outside). Windows do not overlap, so a problem's earliest first_ts is that of its earliest window and its latest
-- last_ts that of its latest window: the (problem_id, window_start) index finds both when a delete (a re-run, a
-- fold, retention) has the triggers read them again, and the two indexes kept for them (0011) go. Each cost every
-- stored sample row one more index entry: a day of 1M events stored with about 1.2 CPU-s less of PostgreSQL's
-- (bench/store_replay.py, bench/README.md fourteenth step).

-- rows stored before: clamped the same way (the update trigger, 0013's, reads their problems' first and last
-- seen again)
UPDATE window_problem_samples s
   SET first_ts = LEAST(GREATEST(s.first_ts, s.window_start), w.window_end - interval '1 microsecond'),
       last_ts = LEAST(GREATEST(s.last_ts, s.window_start), w.window_end - interval '1 microsecond')
  FROM windows w
 WHERE w.window_start = s.window_start
   AND (s.first_ts < s.window_start OR s.last_ts < s.window_start
        OR s.first_ts >= w.window_end OR s.last_ts >= w.window_end);

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
        -- a deleted row may have held an extreme: read them again from what is stored now, the earliest and the
        -- latest window of each problem (its samples' times lie in their windows)
        UPDATE problem_totals t SET
                first_seen = (SELECT s.first_ts FROM window_problem_samples s WHERE s.problem_id = t.problem_id
                              ORDER BY s.window_start LIMIT 1),
                last_seen = (SELECT s.last_ts FROM window_problem_samples s WHERE s.problem_id = t.problem_id
                             ORDER BY s.window_start DESC LIMIT 1),
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

DROP INDEX window_problem_samples_first;
DROP INDEX window_problem_samples_last;
