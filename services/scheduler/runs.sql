-- name: finished_runs
-- Active, enabled campaigns whose every execution has finished: their run is over. Locked, and
-- skipped by another scheduler that holds them. With the account's health: a run that ended
-- because its account died is a failure, not a completion.
SELECT c.id, c.status, c.enabled, c.launch_type, c.recurrence, c.timezone, c.scheduled_at,
       a.health_status AS account_health, a.health_detail AS account_detail
FROM campaigns c
LEFT JOIN telegram_accounts a ON a.id = c.telegram_account_id
WHERE c.status = 'active' AND c.enabled AND c.deleted_at IS NULL
  AND EXISTS (SELECT 1 FROM executions e
              WHERE e.campaign_id = c.id AND e.deleted_at IS NULL)
  AND NOT EXISTS (SELECT 1 FROM executions e
                  WHERE e.campaign_id = c.id AND e.deleted_at IS NULL
                    AND e.status IN {{EXECUTIONS_UNFINISHED}})
LIMIT $1
FOR NO KEY UPDATE OF c SKIP LOCKED;

-- name: finish_run
-- Done, or (recurring) back to scheduled for the next occurrence, or failed with $5.
UPDATE campaigns
SET status = $2,
    completed_at = CASE WHEN $2 = 'completed' THEN $3 ELSE completed_at END,
    next_run_at = $4,
    failure_reason = coalesce($5, failure_reason),
    updated_at = $3
WHERE id = $1;
