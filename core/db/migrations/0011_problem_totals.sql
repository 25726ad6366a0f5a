-- Running totals per problem, so a registry refresh reads one row per problem instead of re-aggregating every
-- stored window of it (a cost that grew with history, paid every 15 minutes).
-- Kept by statement triggers on window_problem_samples: every writer (replacing a window, folding an alias
-- into its survivor, retention) adds the rows it inserts and subtracts the rows it deletes, in its own
-- transaction — re-running a window subtracts the old window and adds the new one, never double counts.
CREATE TABLE problem_totals (
    problem_id  text PRIMARY KEY,
    events      bigint NOT NULL,              -- sum(count) over the problem's stored windows
    windows     integer NOT NULL              -- how many stored windows hold it (0: none left)
);
CREATE TABLE problem_app_windows (
    problem_id  text NOT NULL,
    app         text NOT NULL,
    windows     integer NOT NULL,             -- stored windows in which the problem was seen in this app
    PRIMARY KEY (problem_id, app)
);
-- min(first_ts) and max(last_ts) per problem from an index, not from a scan of its windows
CREATE INDEX window_problem_samples_first ON window_problem_samples (problem_id, first_ts);
CREATE INDEX window_problem_samples_last ON window_problem_samples (problem_id, last_ts);

CREATE FUNCTION problem_totals_apply() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
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
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO problem_totals AS t (problem_id, events, windows)
            SELECT problem_id, sum(count), count(*) FROM new_rows GROUP BY problem_id ORDER BY problem_id
            ON CONFLICT (problem_id) DO UPDATE SET events = t.events + EXCLUDED.events,
                                                   windows = t.windows + EXCLUDED.windows;
        INSERT INTO problem_app_windows AS t (problem_id, app, windows)
            SELECT problem_id, a, count(*) FROM new_rows, unnest(apps) a GROUP BY problem_id, a ORDER BY problem_id, a
            ON CONFLICT (problem_id, app) DO UPDATE SET windows = t.windows + EXCLUDED.windows;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION problem_totals_clear() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM problem_totals;
    DELETE FROM problem_app_windows;
    RETURN NULL;
END $$;

CREATE TRIGGER problem_totals_insert AFTER INSERT ON window_problem_samples
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION problem_totals_apply();
CREATE TRIGGER problem_totals_update AFTER UPDATE ON window_problem_samples
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION problem_totals_apply();
CREATE TRIGGER problem_totals_delete AFTER DELETE ON window_problem_samples
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION problem_totals_apply();
CREATE TRIGGER problem_totals_truncate AFTER TRUNCATE ON window_problem_samples
    FOR EACH STATEMENT EXECUTE FUNCTION problem_totals_clear();

-- what is stored already
INSERT INTO problem_totals (problem_id, events, windows)
    SELECT problem_id, sum(count), count(*) FROM window_problem_samples GROUP BY problem_id;
INSERT INTO problem_app_windows (problem_id, app, windows)
    SELECT problem_id, a, count(*) FROM window_problem_samples, unnest(apps) a GROUP BY problem_id, a;
