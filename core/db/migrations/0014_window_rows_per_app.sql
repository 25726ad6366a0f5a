-- One row per (window, problem, application) where three tables were keyed alike: the per-minute counts (an
-- array, position i = minute i - 1 of the window) and the field values (migration 0012's object) move into
-- window_totals. A day of 1M events wrote 567k minute rows, 215k totals and 215k value objects (three COPYs
-- into six indexes); it is 215k rows in one now. Views give the old shapes to readers and ad-hoc queries.
ALTER TABLE window_totals ADD COLUMN minutes integer[];  -- events per minute, from window_start; trailing zeros cut
ALTER TABLE window_totals ADD COLUMN dimensions jsonb;   -- dimension -> value -> count

-- a minute row or value object without its total (none is written so) keeps its counts all the same
INSERT INTO window_totals (window_start, problem_id, app, count)
    SELECT window_start, problem_id, app, sum(count) FROM window_counts GROUP BY window_start, problem_id, app
    ON CONFLICT DO NOTHING;
INSERT INTO window_totals (window_start, problem_id, app, count)
    SELECT window_start, problem_id, app, 0 FROM window_dimensions ON CONFLICT DO NOTHING;

-- a minute row outside its window (an event whose own timestamp the source's range query read otherwise) goes
-- to the window's first or last minute, as counting does since (tasks.counting)
WITH clamped AS (
    SELECT c.window_start, c.problem_id, c.app, c.count,
           least(greatest(extract(epoch FROM c.minute - c.window_start)::int / 60, 0),
                 coalesce(extract(epoch FROM w.window_end - w.window_start)::int / 60, 15) - 1) + 1 AS i
    FROM window_counts c LEFT JOIN windows w ON w.window_start = c.window_start)
UPDATE window_totals t SET minutes = m.minutes
    FROM (SELECT s.window_start, s.problem_id, s.app, array_agg(coalesce(c.count, 0) ORDER BY g.i) AS minutes
          FROM (SELECT window_start, problem_id, app, max(i) AS n FROM clamped GROUP BY 1, 2, 3) s
          CROSS JOIN LATERAL generate_series(1, s.n) g(i)
          LEFT JOIN (SELECT window_start, problem_id, app, i, sum(count) AS count FROM clamped GROUP BY 1, 2, 3, 4) c
                 ON c.window_start = s.window_start AND c.problem_id = s.problem_id AND c.app = s.app AND c.i = g.i
          GROUP BY s.window_start, s.problem_id, s.app) m
    WHERE m.window_start = t.window_start AND m.problem_id = t.problem_id AND m.app = t.app;
UPDATE window_totals t SET dimensions = d.dimensions FROM window_dimensions d
    WHERE d.window_start = t.window_start AND d.problem_id = t.problem_id AND d.app = t.app;

DROP VIEW window_dimension_rows;
DROP TABLE window_dimensions;
DROP TABLE window_counts;

-- The old shapes. Readers filter on window_start (indexed) besides minute: a window lasts at most an hour.
CREATE VIEW window_counts AS
    SELECT t.window_start, t.window_start + (m.i - 1) * interval '1 minute' AS minute, t.problem_id, t.app,
           m.count
    FROM window_totals t, unnest(t.minutes) WITH ORDINALITY AS m(count, i)
    WHERE m.count > 0;
CREATE VIEW window_dimensions AS
    SELECT window_start, problem_id, app, dimensions FROM window_totals
    WHERE dimensions IS NOT NULL AND dimensions <> '{}'::jsonb;
CREATE VIEW window_dimension_rows AS
    SELECT w.window_start, w.problem_id, w.app, d.key AS dimension, v.key AS value, v.value::bigint AS count
    FROM window_dimensions w, jsonb_each(w.dimensions) d, jsonb_each_text(d.value) v;

-- Two minute arrays added position by position (folding an alias into its survivor adds their counts).
CREATE FUNCTION add_minutes(a integer[], b integer[]) RETURNS integer[] LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT AS $$
    SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i)
    FROM unnest(coalesce(a, '{}'::integer[]), coalesce(b, '{}'::integer[])) WITH ORDINALITY AS u(x, y, i)
$$;
CREATE AGGREGATE sum_minutes(integer[]) (SFUNC = add_minutes, STYPE = integer[]);
