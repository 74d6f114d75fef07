-- name: in_flight
-- Executions claimed and not yet stepped (a live lease), counted up to $2: how far dispatch is
-- ahead of the senders. A step, a cancellation or a pause clears the lease.
SELECT count(*) FROM (SELECT 1 FROM executions WHERE lease_until > $1 LIMIT $2) AS leased;

-- name: claim_due
-- Due executions of campaigns that may run, oldest first, at most $3 of them, leased until $2
-- so no other scheduler emits them again before the lease ends; a claim whose lease ran out
-- (its event was lost, or the sender died) is claimed again. A deleted account's executions
-- are not claimed: they wait until the campaign has a live account (the sender checks again
-- before each send), nor those of a conversation a person took over (taken_over_at,
-- docs/inbox.md), nor those of a context whose sending the fleet breaker paused (they go once
-- it resets; the sender defers any it is handed meanwhile). Only the $3 rows it claims are
-- locked: locking a larger slice and leasing part of it wrote a row lock into every tuple of
-- the slice (a fixed 2,000 while the credit was a few hundred). Run through fetch_replanned,
-- so the bound LIMIT gets a plan of its own each time and never a generic one that scans the
-- table.
WITH due AS MATERIALIZED (
    SELECT e.id
    FROM executions e
    JOIN campaigns c ON c.id = e.campaign_id
    JOIN telegram_accounts a ON a.id = c.telegram_account_id
    WHERE e.status IN {{EXECUTIONS_BETWEEN_STEPS}}
      AND e.next_execution_at <= $1
      AND (e.lease_until IS NULL OR e.lease_until <= $1)
      AND e.deleted_at IS NULL AND e.taken_over_at IS NULL
      AND c.status = 'active' AND c.enabled AND c.deleted_at IS NULL
      AND a.deleted_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM fleet_breakers b
                      WHERE b.tripped_at IS NOT NULL
                        AND (b.organization_id = a.organization_id
                             OR (a.organization_id IS NULL AND b.user_id = a.owner_user_id)))
    ORDER BY e.next_execution_at
    LIMIT $3
    FOR NO KEY UPDATE OF e SKIP LOCKED
)
UPDATE executions e
SET lease_until = $2, dispatched_at = $1
FROM due, campaigns c
WHERE e.id = due.id AND c.id = e.campaign_id
RETURNING e.id, e.campaign_id, c.telegram_account_id, e.next_execution_at;

-- name: due_launches
-- Scheduled campaigns whose time has come, locked (another scheduler skips them), with the
-- columns changes.Locked reads and the run time they are due for. A batch of a burst (the
-- literal limit is dispatch.FIRE_BATCH; see claim_due for why it is a literal): the sweep takes
-- batches until one comes back short.
SELECT id, organization_id, created_by, name, status, enabled, launch_type, scheduled_at,
       recurrence, timezone, telegram_account_id, deleted_at, next_run_at
FROM campaigns
WHERE status = 'scheduled' AND enabled AND deleted_at IS NULL AND next_run_at <= $1
ORDER BY next_run_at
LIMIT 1000
FOR NO KEY UPDATE SKIP LOCKED;

-- name: record_missed
-- Run times that passed while no scheduler ran ($2), one entry per campaign ($1); $3: the next
-- occurrence of a recurring campaign, null for a one-off (it waits for a person: run now, or a
-- new time).
UPDATE campaigns c
SET missed_run_at = v.missed_run_at, next_run_at = v.next_run_at, updated_at = $4
FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS v(id, missed_run_at, next_run_at)
WHERE c.id = v.id;
