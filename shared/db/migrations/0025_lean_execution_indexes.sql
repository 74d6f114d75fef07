-- A stop cancels every unfinished execution of its campaigns (issue 17: a bulk stop of
-- 1,000,000 executions). A status change is never a HOT update (status is in the indexes'
-- keys and predicates), so every cancelled row is written again into every index whose
-- predicate it still matches; the index on (campaign_id, status) of every row was one of those
-- writes. It is split in two partial indexes that a cancelled row is in neither of:
-- - unfinished rows (what a stop, a pause, a resume and the end of a run look for);
-- - completed and failed rows (a relaunch's reset and a recurring run's restart, and the
--   contacts tab filtered by those statuses).
-- Reads of a campaign's cancelled rows (the contacts tab filtered by 'cancelled') walk the
-- (campaign_id, contact_id) key, as every read of a campaign's executions without a status
-- does: the cancelled rows are most of a stopped campaign, so an index on them would not be
-- more selective. Measured in docs/performance.md.
DROP INDEX executions_campaign_status_idx;
CREATE INDEX executions_unfinished_idx ON executions (campaign_id, status)
    WHERE status IN ('pending', 'running', 'waiting', 'paused');
CREATE INDEX executions_finished_idx ON executions (campaign_id, status)
    WHERE status IN ('completed', 'failed');
