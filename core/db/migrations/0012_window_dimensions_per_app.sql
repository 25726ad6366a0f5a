-- Field values behind the counts, one row per (window, problem, application) instead of one per value:
-- {"pod": {"payments-1": 30, "payments-2": 12}, "version": {"1.4.2": 42}}. A day of 1M events wrote 1.37M
-- value rows (225 MB with their index, the largest table written); the same values are 215k rows here.
-- Peak explanations read them (tasks.detection.explain); windows stored by earlier versions keep their
-- error_type values, which nothing reads.
CREATE TABLE window_dimension_values (
    window_start  timestamptz NOT NULL,
    problem_id    text NOT NULL,
    app           text NOT NULL,
    dimensions    jsonb NOT NULL,              -- dimension -> value -> count
    PRIMARY KEY (window_start, problem_id, app)
);

INSERT INTO window_dimension_values (window_start, problem_id, app, dimensions)
    SELECT window_start, problem_id, app, jsonb_object_agg(dimension, counts)
    FROM (SELECT window_start, problem_id, app, dimension, jsonb_object_agg(value, count) AS counts
          FROM window_dimensions GROUP BY window_start, problem_id, app, dimension) per_dimension
    GROUP BY window_start, problem_id, app;

DROP TABLE window_dimensions;
ALTER TABLE window_dimension_values RENAME TO window_dimensions;
ALTER INDEX window_dimension_values_pkey RENAME TO window_dimensions_pkey;

-- The rows as they were, one per value: what ad-hoc queries and the week's explanation read.
CREATE VIEW window_dimension_rows AS
    SELECT w.window_start, w.problem_id, w.app, d.key AS dimension, v.key AS value, v.value::bigint AS count
    FROM window_dimensions w, jsonb_each(w.dimensions) d, jsonb_each_text(d.value) v;

-- Two such objects added value by value (folding an alias into its survivor adds their counts).
CREATE FUNCTION add_dimensions(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT
AS $$
    SELECT coalesce(jsonb_object_agg(dimension, counts), '{}'::jsonb)
    FROM (SELECT dimension, jsonb_object_agg(value, total) AS counts
          FROM (SELECT d.key AS dimension, v.key AS value, sum(v.value::bigint) AS total
                FROM (SELECT * FROM jsonb_each(coalesce(a, '{}'::jsonb))
                      UNION ALL SELECT * FROM jsonb_each(coalesce(b, '{}'::jsonb))) d,
                     jsonb_each_text(d.value) v
                GROUP BY d.key, v.key) per_value
          GROUP BY dimension) per_dimension
$$;
CREATE AGGREGATE sum_dimensions(jsonb) (SFUNC = add_dimensions, STYPE = jsonb, INITCOND = '{}');
