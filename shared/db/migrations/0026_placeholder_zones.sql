-- Placeholder so that this branch (zones) migrates without a gap: the number belongs to
-- another branch's migration. DELETE THIS FILE WHEN MERGING (the real 0026 replaces it).
SELECT 1;
