-- name: fail_account_campaigns
-- A dead account (auth lost, session conflict, banned): its campaigns that could still send fail, with the reason.
UPDATE campaigns c
SET status = 'failed', failure_reason = $2, updated_at = $3
FROM (SELECT id, status FROM campaigns
      WHERE telegram_account_id = $1 AND deleted_at IS NULL
        AND status IN ('active', 'scheduled', 'paused')
      FOR UPDATE) before
WHERE c.id = before.id
RETURNING c.id, before.status AS previous_status, c.enabled;

-- name: interrupt_account_executions
-- Their unfinished executions are interrupted, not finished (issue 16): paused where they stand
-- (node and next_execution_at kept) with the reason, so a relaunch after the account is fixed
-- or changed continues them, and a stop cancels them.
UPDATE executions
SET status = 'paused', error_message = $2, lease_until = NULL, updated_at = $3
WHERE campaign_id = ANY($1::uuid[]) AND deleted_at IS NULL
  AND status IN {{EXECUTIONS_UNFINISHED}};
