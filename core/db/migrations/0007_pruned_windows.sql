-- Windows whose counts were already added to problems.count_pruned: re-backfilling a pruned day and pruning
-- it again must not add its events a second time.
CREATE TABLE pruned_windows (
    window_start  timestamptz PRIMARY KEY,
    pruned_at     timestamptz NOT NULL DEFAULT now()
);
