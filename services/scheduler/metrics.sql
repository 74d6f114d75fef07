-- name: unfinished_operations
-- Over the partial index of unfinished operations.
SELECT status, count(*) AS count
FROM bulk_operations
WHERE status IN ('queued', 'processing')
GROUP BY status;

-- name: unfinished_actions
-- Paused actions have no index of their own; the table holds one row per request, so a scan
-- every sweep stays cheap.
SELECT status, count(*) AS count
FROM bulk_actions
WHERE status IN ('queued', 'processing', 'paused')
GROUP BY status;
