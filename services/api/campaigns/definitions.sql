-- name: insert
-- With what a "now" campaign's launch check reads of it.
INSERT INTO campaigns (organization_id, created_by, name, description, telegram_account_id,
                       timezone, launch_type, scheduled_at, recurrence, flow, settings, tags)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id, organization_id, created_by, status, enabled, launch_type, deleted_at;

-- name: update
-- Every editable field at once; the caller merges the patch into the current row first. $13:
-- the launch plan was edited, so a scheduled campaign's run time moves to $12 and a missed run
-- is answered (rescheduled); other edits leave both alone.
UPDATE campaigns
SET name = $2, description = $3, telegram_account_id = $4, timezone = $5, launch_type = $6,
    scheduled_at = $7, recurrence = $8, flow = $9, settings = $10, tags = $11,
    next_run_at = CASE WHEN status = 'scheduled' AND $13 THEN $12 ELSE next_run_at END,
    missed_run_at = CASE WHEN $13 THEN NULL ELSE missed_run_at END,
    updated_at = now()
WHERE id = $1
RETURNING id, organization_id, created_by, status, enabled, launch_type, deleted_at;

-- name: list
-- The campaign list, and (with where c.id = $1) the detail view: each campaign with its
-- creator, its account's name and health, why the fleet breaker paused the sending of the
-- account's context (its organization, or its owner in personal mode), if it did, and whether
-- any contact is in it (what the display
-- status and the overview tab need). {where}, {order} and {limit} are filled from fixed
-- fragments in definitions.py (the filters the caller gave, the sort column with its keyset
-- condition); values are bound.
SELECT c.*, u.email AS creator_email, a.display_name AS account_name,
       a.health_status AS account_health,
       (SELECT b.reason FROM fleet_breakers b
        WHERE b.tripped_at IS NOT NULL
          AND CASE WHEN a.organization_id IS NOT NULL THEN b.organization_id = a.organization_id
                   ELSE b.user_id = a.owner_user_id END) AS fleet_paused,
       EXISTS (SELECT 1 FROM executions e
               WHERE e.campaign_id = c.id AND e.deleted_at IS NULL) AS has_contacts
FROM campaigns c
JOIN users u ON u.id = c.created_by
LEFT JOIN telegram_accounts a ON a.id = c.telegram_account_id AND a.deleted_at IS NULL
WHERE {where}
ORDER BY {order}
LIMIT {limit};

-- name: account_in_context
-- A Telegram account the campaign may use: same organization, or the caller's own personal one.
SELECT id FROM telegram_accounts
WHERE id = $1 AND deleted_at IS NULL
  AND organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR owner_user_id = $3);
