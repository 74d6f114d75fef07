-- Bulk operations over campaigns: the API records the request (with its actor, for the audit
-- trail); the scheduler owns everything after that.

-- name: insert
INSERT INTO bulk_operations (id, organization_id, requested_by, action, selection, options,
                             origin, correlation_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, 'http', $7, $8, $8);

-- name: get
SELECT o.*, u.email AS requested_by_email
FROM bulk_operations o
JOIN users u ON u.id = o.requested_by
WHERE o.id = $1;

-- name: status
SELECT status FROM bulk_operations WHERE id = $1;

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
