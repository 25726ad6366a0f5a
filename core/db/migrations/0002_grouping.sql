-- Aliases may name problems whose registry row is written later in the same window (or never, for ids
-- merged away before their first report): the template store, not the registry, owns them.
ALTER TABLE problem_aliases DROP CONSTRAINT IF EXISTS problem_aliases_problem_id_fkey;
