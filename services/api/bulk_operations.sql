-- Bulk operations over campaigns: the scheduler records and runs them; the API reads them.

-- name: get
SELECT o.*, u.email AS requested_by_email
FROM bulk_operations o
JOIN users u ON u.id = o.requested_by
WHERE o.id = $1;

-- name: accepted
-- An operation the API accepted that the scheduler has not recorded yet: its command record
-- (kept for outbox_retention_s) by the operation id it is keyed by ($1, as text; walks
-- outbox_bulk_commands_key_idx), with the requester's email.
SELECT c.command, u.email AS requested_by_email
FROM (SELECT convert_from(value, 'UTF8')::jsonb AS command
      FROM outbox
      WHERE topic = 'dripline.bulk.commands' AND key = convert_to($1, 'UTF8')
      ORDER BY id
      LIMIT 1) c
JOIN users u ON u.id = (c.command->'actor'->>'user_id')::uuid;

-- name: problems
-- The campaigns that were skipped or were errors, first ones first ($2 at most).
SELECT campaign_id, status AS result, error_code AS code, error_message AS message,
       cancelled_executions, processed_at
FROM bulk_operation_items
WHERE bulk_operation_id = $1 AND status IN ('skipped', 'failed')
ORDER BY campaign_id
LIMIT $2;

-- name: items
-- Every outcome, by campaign id after $3, optionally of one result ($2).
SELECT campaign_id, status AS result, error_code AS code, error_message AS message,
       cancelled_executions, processed_at
FROM bulk_operation_items
WHERE bulk_operation_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::uuid IS NULL OR campaign_id > $3)
ORDER BY campaign_id
LIMIT $4;

-- name: list
-- The caller's operations in this context ($1 organization or personal), or with $3 every
-- member's (owners and admins with admin view on, asking for all), newest first, before the
-- cursor ($4, $5).
SELECT o.*, u.email AS requested_by_email
FROM bulk_operations o
JOIN users u ON u.id = o.requested_by
WHERE o.organization_id IS NOT DISTINCT FROM $1
  AND ($3 OR o.requested_by = $2)
  AND ($4::timestamptz IS NULL OR (o.created_at, o.id) < ($4, $5::uuid))
ORDER BY o.created_at DESC, o.id DESC
LIMIT $6;
