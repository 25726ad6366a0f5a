-- Every window rewrites the row of each problem it saw in the registry and in the running totals (a 1M-event day:
-- 2,250 rows a window, 96 times). Full pages sent each new row version to another page with a new index entry,
-- and the registry of 3,500 problems grew to 24 MB in a day; with half of each page free the new version stays
-- on its page (a HOT update: no index entry, the old version pruned in place) — 5.7 MB, and about 1 CPU-s less
-- of PostgreSQL's per day in the replay (bench/README.md, twelfth step). Pages written from now on.
ALTER TABLE problems SET (fillfactor = 50);
ALTER TABLE problem_totals SET (fillfactor = 50);
ALTER TABLE problem_app_windows SET (fillfactor = 50);
