-- Placeholder, so that 0011 follows without a gap on the stats-recovery branch: the relay's
-- migration (issue 13, branch relay) takes number 0010 and replaces this file when merged.
SELECT 1;
