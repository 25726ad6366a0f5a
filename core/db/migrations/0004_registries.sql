-- Totals of counts pruned by retention, so count_total survives pruning (count_total = pruned + stored).
ALTER TABLE problems ADD COLUMN count_pruned bigint NOT NULL DEFAULT 0;
-- For a problem merged into another by the grouping engine: where its events now go.
ALTER TABLE problems ADD COLUMN merged_into text;
