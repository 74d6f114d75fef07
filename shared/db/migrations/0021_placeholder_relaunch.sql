-- Placeholder so that this branch (relaunch) migrates without a gap: the number belongs to
-- another branch's migration. DELETE THIS FILE WHEN MERGING (the real 0021 replaces it).
SELECT 1;
