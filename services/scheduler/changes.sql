-- name: lock_campaigns
-- The campaigns a change is decided on, locked in id order until the transaction ends, so the
-- changes over the same campaigns (lifecycle commands, bulk operations' batches, bulk actions'
-- enrolments) wait for each other, one after the other within a campaign, and never deadlock.
SELECT id, organization_id, created_by, name, status, enabled, launch_type, scheduled_at,
       recurrence, timezone, telegram_account_id, deleted_at
FROM campaigns
WHERE id = ANY($1::uuid[])
ORDER BY id
FOR UPDATE;

-- name: apply_changes
-- Each campaign's new state, set-based ($1 ids, $2 statuses, $3 enabled, $4 deleted, $7 the
-- failure reason of a campaign that fails; one entry per campaign); $5: the actor, recorded as
-- deleted_by when the command deletes. A campaign that leaves scheduled (stopped, run now,
-- fired) has no run left to wait for: its next and missed run times are cleared.
UPDATE campaigns c
SET status = v.status,
    enabled = v.enabled,
    deleted_at = CASE WHEN v.deleted THEN coalesce(c.deleted_at, $6) END,
    deleted_by = CASE WHEN v.deleted THEN coalesce(c.deleted_by, $5) END,
    failure_reason = CASE WHEN v.status = 'failed' THEN coalesce(v.failure, c.failure_reason)
                          ELSE c.failure_reason END,
    next_run_at = CASE WHEN v.status = 'scheduled' THEN c.next_run_at END,
    missed_run_at = CASE WHEN v.status = 'scheduled' THEN c.missed_run_at END,
    updated_at = $6
FROM unnest($1::uuid[], $2::text[], $3::boolean[], $4::boolean[], $7::text[])
     AS v(id, status, enabled, deleted, failure)
WHERE c.id = v.id;

-- name: set_launched
-- A launch (or a scheduled run that starts) answers any missed run.
UPDATE campaigns c
SET launched_at = $3, next_run_at = v.next_run_at, failure_reason = NULL, missed_run_at = NULL
FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, next_run_at)
WHERE c.id = v.id;

-- Each execution effect takes campaign ids ($1) and answers how many executions it changed in
-- each campaign.

-- name: resume_executions
-- Spec 001: paused executions resume; next_execution_at becomes now where it has passed. An
-- execution interrupted by a dead account (issue 16) loses that reason as it resumes.
WITH changed AS (
    UPDATE executions
    SET status = 'pending', error_message = NULL,
        next_execution_at = CASE WHEN next_execution_at IS NULL OR next_execution_at < $2
                                 THEN $2 ELSE next_execution_at END,
        lease_until = NULL, updated_at = $2
    WHERE campaign_id = ANY($1::uuid[]) AND status = 'paused' AND deleted_at IS NULL
    RETURNING campaign_id
)
SELECT campaign_id, count(*) AS changed FROM changed GROUP BY campaign_id;

-- name: reset_completed_executions
-- Only when the launch asks for it: completed executions start the flow again.
WITH changed AS (
    UPDATE executions
    SET status = 'pending', current_node_id = NULL, next_execution_at = $2, completed_at = NULL,
        started_at = NULL, error_message = NULL, attempts = 0, lease_until = NULL,
        context = context - 'flow', updated_at = $2
    WHERE campaign_id = ANY($1::uuid[]) AND status = 'completed' AND deleted_at IS NULL
    RETURNING campaign_id
)
SELECT campaign_id, count(*) AS changed FROM changed GROUP BY campaign_id;

-- name: restart_finished_executions
-- A recurring campaign's new run (at its occurrence, or run now): every execution that finished
-- starts the flow again.
WITH changed AS (
    UPDATE executions
    SET status = 'pending', current_node_id = NULL, next_execution_at = $2, completed_at = NULL,
        started_at = NULL, error_message = NULL, attempts = 0, lease_until = NULL,
        context = context - 'flow', updated_at = $2
    WHERE campaign_id = ANY($1::uuid[]) AND status IN ('completed', 'failed')
      AND deleted_at IS NULL
    RETURNING campaign_id
)
SELECT campaign_id, count(*) AS changed FROM changed GROUP BY campaign_id;

-- name: pause_executions
-- next_execution_at is kept, so a relaunch resumes from the same point.
WITH changed AS (
    UPDATE executions
    SET status = 'paused', lease_until = NULL, updated_at = $2
    WHERE campaign_id = ANY($1::uuid[]) AND status IN {{EXECUTIONS_IN_MOTION}}
      AND deleted_at IS NULL
    RETURNING campaign_id
)
SELECT campaign_id, count(*) AS changed FROM changed GROUP BY campaign_id;

-- name: cancel_executions
-- $3: the reason written on each cancelled execution.
WITH changed AS (
    UPDATE executions
    SET status = 'cancelled', completed_at = $2, error_message = $3, lease_until = NULL,
        updated_at = $2
    WHERE campaign_id = ANY($1::uuid[]) AND status IN {{EXECUTIONS_UNFINISHED}}
      AND deleted_at IS NULL
    RETURNING campaign_id
)
SELECT campaign_id, count(*) AS changed FROM changed GROUP BY campaign_id;
