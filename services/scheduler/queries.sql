-- name: lock_campaign
-- The campaign a lifecycle command acts on, locked until the command's transaction ends.
SELECT id, organization_id, created_by, name, status, enabled, launch_type, scheduled_at,
       recurrence, timezone, telegram_account_id, deleted_at
FROM campaigns
WHERE id = $1
FOR UPDATE;

-- name: caller_context
-- The actor's role in the organization named by the command (null in personal mode) and the
-- organization's admin view setting.
SELECT m.role, o.admin_view_enabled
FROM memberships m
JOIN organizations o ON o.id = m.organization_id
WHERE m.organization_id = $1 AND m.user_id = $2;

-- name: apply_changes
-- Each campaign's new state, set-based ($1 ids, $2 statuses, $3 enabled, $4 deleted; one entry
-- per campaign); $5: the actor, recorded as deleted_by when the command deletes.
UPDATE campaigns c
SET status = v.status,
    enabled = v.enabled,
    deleted_at = CASE WHEN v.deleted THEN coalesce(c.deleted_at, $6) END,
    deleted_by = CASE WHEN v.deleted THEN coalesce(c.deleted_by, $5) END,
    updated_at = $6
FROM unnest($1::uuid[], $2::text[], $3::boolean[], $4::boolean[]) AS v(id, status, enabled, deleted)
WHERE c.id = v.id;

-- name: set_launched
UPDATE campaigns c
SET launched_at = $3, next_run_at = v.next_run_at, failure_reason = NULL
FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, next_run_at)
WHERE c.id = v.id;

-- Each execution effect takes campaign ids ($1) and answers how many executions it changed in
-- each campaign.

-- name: resume_executions
-- Spec 001: paused executions resume; next_execution_at becomes now where it has passed.
WITH changed AS (
    UPDATE executions
    SET status = 'pending',
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

-- name: pause_executions
-- next_execution_at is kept, so a relaunch resumes from the same point.
WITH changed AS (
    UPDATE executions
    SET status = 'paused', lease_until = NULL, updated_at = $2
    WHERE campaign_id = ANY($1::uuid[]) AND status IN ('pending', 'running', 'waiting')
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
    WHERE campaign_id = ANY($1::uuid[]) AND status IN ('pending', 'running', 'waiting', 'paused')
      AND deleted_at IS NULL
    RETURNING campaign_id
)
SELECT campaign_id, count(*) AS changed FROM changed GROUP BY campaign_id;

-- name: duplicate_campaign
-- Spec 001: the copy is a draft with the flow and settings, and no contacts. $3 duplicates it.
INSERT INTO campaigns (id, organization_id, created_by, name, description, telegram_account_id,
                       timezone, launch_type, scheduled_at, recurrence, flow, settings, tags,
                       created_at, updated_at)
SELECT $2, organization_id, $3, $4, description, telegram_account_id, timezone, launch_type,
       scheduled_at, recurrence, flow, settings, tags, $5, $5
FROM campaigns
WHERE id = $1
ON CONFLICT (id) DO NOTHING;

-- name: add_contacts
-- One pending execution per contact the actor can see, due now, its context taken from the
-- contact. A contact already in the campaign is skipped; one removed earlier comes back fresh.
-- $3/$4: the campaign's organization, or the personal owner when that is null.
WITH wanted AS (
    SELECT DISTINCT unnest($2::uuid[]) AS contact_id
), visible AS (
    -- By primary key: joined with `wanted` instead, the planner misjudges the context filter
    -- (IS NOT DISTINCT FROM) and scans every contact once per contact asked for.
    SELECT c.*
    FROM contacts c
    WHERE c.id = ANY($2::uuid[])
      AND c.deleted_at IS NULL
      AND c.organization_id IS NOT DISTINCT FROM $3
      AND ($3::uuid IS NOT NULL OR c.owner_user_id = $4)
), added AS (
    INSERT INTO executions (campaign_id, contact_id, telegram_account_id, status,
                            next_execution_at, context, created_at, updated_at)
    SELECT $1, v.id, $5, 'pending', $6,
           jsonb_build_object('contact', jsonb_build_object(
               'first_name', v.first_name, 'last_name', v.last_name,
               'telegram_username', v.telegram_username, 'phone', v.phone,
               'telegram_user_id', v.telegram_user_id, 'tags', to_jsonb(v.tags),
               'custom_fields', v.custom_fields)),
           $6, $6
    FROM visible v
    ON CONFLICT (campaign_id, contact_id) DO UPDATE
    SET status = 'pending', deleted_at = NULL, current_node_id = NULL, variant = NULL,
        next_execution_at = excluded.next_execution_at, context = excluded.context,
        telegram_account_id = excluded.telegram_account_id, error_message = NULL,
        attempts = 0, dispatched_at = NULL, started_at = NULL, completed_at = NULL,
        updated_at = excluded.updated_at
    WHERE executions.deleted_at IS NOT NULL
    RETURNING contact_id
)
-- One row per contact asked for: whether the actor can see it, and whether it was added.
SELECT w.contact_id, v.id IS NOT NULL AS visible, a.contact_id IS NOT NULL AS added
FROM wanted w
LEFT JOIN visible v ON v.id = w.contact_id
LEFT JOIN added a ON a.contact_id = w.contact_id;

-- name: remove_contacts
-- Spec 001: the executions are soft-deleted (their progress is lost, their history kept).
WITH removed AS (
    UPDATE executions
    SET deleted_at = $3,
        status = CASE WHEN status IN ('pending', 'running', 'waiting', 'paused')
                      THEN 'cancelled' ELSE status END,
        completed_at = coalesce(completed_at, $3),
        error_message = CASE WHEN status IN ('pending', 'running', 'waiting', 'paused')
                             THEN 'Contact removed from campaign' ELSE error_message END,
        updated_at = $3
    WHERE campaign_id = $1 AND contact_id = ANY($2::uuid[]) AND deleted_at IS NULL
    RETURNING 1
)
SELECT (SELECT count(DISTINCT x) FROM unnest($2::uuid[]) x) AS requested,
       (SELECT count(*) FROM removed) AS removed;

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
                    AND e.status IN ('pending', 'running', 'waiting', 'paused'))
LIMIT $1
FOR UPDATE OF c SKIP LOCKED;

-- name: finish_run
-- Done, or (recurring) back to scheduled for the next occurrence, or failed with $5.
UPDATE campaigns
SET status = $2,
    completed_at = CASE WHEN $2 = 'completed' THEN $3 ELSE completed_at END,
    next_run_at = $4,
    failure_reason = coalesce($5, failure_reason),
    updated_at = $3
WHERE id = $1;

-- name: claim_due
-- Due executions of campaigns that may run, oldest first, leased until $2 so no other
-- scheduler emits them again before the lease ends; a claim whose lease ran out (its event was
-- lost, or the sender died) is claimed again. The limit is a literal on purpose: a bound LIMIT
-- can make a prepared statement switch to a generic plan that scans the table.
WITH due AS (
    SELECT e.id
    FROM executions e
    JOIN campaigns c ON c.id = e.campaign_id
    WHERE e.status IN ('pending', 'waiting')
      AND e.next_execution_at <= $1
      AND (e.lease_until IS NULL OR e.lease_until <= $1)
      AND e.deleted_at IS NULL
      AND c.status = 'active' AND c.enabled AND c.deleted_at IS NULL
      AND c.telegram_account_id IS NOT NULL
    ORDER BY e.next_execution_at
    LIMIT 2000
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE executions e
SET lease_until = $2, dispatched_at = $1
FROM due, campaigns c
WHERE e.id = due.id AND c.id = e.campaign_id
RETURNING e.id, e.campaign_id, c.telegram_account_id, e.next_execution_at;

-- name: due_launches
-- Scheduled campaigns whose time has come.
SELECT id, status, enabled, launch_type, recurrence, timezone, scheduled_at
FROM campaigns
WHERE status = 'scheduled' AND enabled AND deleted_at IS NULL AND next_run_at <= $1
ORDER BY next_run_at
LIMIT 200
FOR UPDATE SKIP LOCKED;

-- name: start_run
UPDATE campaigns SET status = 'active', launched_at = $2, next_run_at = NULL, updated_at = $2
WHERE id = $1;

-- name: restart_executions
-- A recurring campaign's new run: every execution that finished starts the flow again.
UPDATE executions
SET status = 'pending', current_node_id = NULL, next_execution_at = $2, completed_at = NULL,
    started_at = NULL, error_message = NULL, attempts = 0, lease_until = NULL,
    context = context - 'flow', updated_at = $2
WHERE campaign_id = $1 AND deleted_at IS NULL AND status IN ('completed', 'failed');

-- name: fail_account_campaigns
-- A dead account (auth lost, banned): its campaigns that could still send fail, with the reason.
UPDATE campaigns c
SET status = 'failed', failure_reason = $2, updated_at = $3
FROM (SELECT id, status FROM campaigns
      WHERE telegram_account_id = $1 AND deleted_at IS NULL
        AND status IN ('active', 'scheduled', 'paused')
      FOR UPDATE) before
WHERE c.id = before.id
RETURNING c.id, before.status AS previous_status, c.enabled;

-- name: fail_account_executions
UPDATE executions
SET status = 'failed', completed_at = $3, error_message = $2, lease_until = NULL,
    updated_at = $3
WHERE campaign_id = ANY($1::uuid[]) AND deleted_at IS NULL
  AND status IN ('pending', 'running', 'waiting', 'paused');

-- name: lost_commands
-- Command records after $2 (by outbox id, $3 at most) that the relay marked sent more than $4
-- seconds ago, each with whether consumer $1 has applied its message. Walks the partial index
-- outbox_commands_idx; the caller stops at the first record still unsent or too recent.
SELECT o.id, o.topic, o.key, o.value, o.headers,
       o.sent_at IS NOT NULL AND o.sent_at < now() - make_interval(secs => $4) AS due,
       EXISTS (SELECT 1 FROM inbox i WHERE i.consumer = $1 AND i.message_id = o.message_id)
           AS consumed
FROM outbox o
WHERE o.topic = 'dripline.campaign.commands' AND o.id > $2
ORDER BY o.id
LIMIT $3;
