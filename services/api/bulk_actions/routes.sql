-- Bulk actions over contacts, scheduled work (a row plus the scheduler's periodic job): the API
-- records them, edits them while the rules allow, and pauses, resumes and cancels them (the row
-- locked, so a batch never runs halfway through an edit; bulk_action.changed in the same
-- transaction); the scheduler releases their batches.

-- name: insert
INSERT INTO bulk_actions (id, organization_id, created_by, name, action, mode, selection, params,
                          batch_size, interval_seconds, allowed_days, window_start, window_end,
                          timezone, start_at, next_batch_at, source_action_id, created_at,
                          updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)
RETURNING id;

-- name: carrier
-- A send_message action's own one-message campaign (not listed with the campaigns).
INSERT INTO campaigns (organization_id, created_by, name, telegram_account_id, flow,
                       launch_type, bulk_action_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, 'manual', $6, $7, $7);

-- name: get
SELECT a.*, u.email AS created_by_email, e.completed_at AS export_completed_at,
       e.expires_at AS export_expires_at, e.rows AS export_rows,
       (SELECT r.id FROM bulk_actions r WHERE r.source_action_id = a.id LIMIT 1) AS restored_by
FROM bulk_actions a
JOIN users u ON u.id = a.created_by
LEFT JOIN exports e ON e.id = a.id
WHERE a.id = $1;

-- name: lock
SELECT * FROM bulk_actions WHERE id = $1 FOR UPDATE;

-- name: update
UPDATE bulk_actions
SET name = $2, selection = $3, params = $4, mode = $5, batch_size = $6, interval_seconds = $7,
    allowed_days = $8, window_start = $9, window_end = $10, timezone = $11, start_at = $12,
    next_batch_at = $13, updated_at = $14
WHERE id = $1;

-- name: set_status
UPDATE bulk_actions
SET status = $2, updated_at = $3,
    cancelled_at = CASE WHEN $2 = 'cancelled' THEN $3::timestamptz ELSE cancelled_at END,
    next_batch_at = CASE WHEN $2 = 'cancelled' THEN NULL ELSE next_batch_at END
WHERE id = $1;

-- name: skip_pending
-- A cancelled action's contacts that never got a batch.
UPDATE bulk_action_items
SET status = 'skipped', error_code = 'cancelled', error_message = 'the action was cancelled',
    processed_at = $2
WHERE bulk_action_id = $1 AND status = 'pending';

-- name: count_skipped
UPDATE bulk_actions
SET skipped_count = skipped_count + $2, processed = processed + $2
WHERE id = $1;

-- name: list
-- Newest first, keyset on (created_at, id). $1/$2 the context; $3 every member's (an owner or
-- admin while admin view is on: permissions.can_view), else only the caller's own; filters
-- $4 status, $5 action, $6 creator, $7/$8 created from/to.
SELECT a.*, u.email AS created_by_email, NULL::timestamptz AS export_completed_at,
       NULL::timestamptz AS export_expires_at, NULL::integer AS export_rows,
       NULL::uuid AS restored_by
FROM bulk_actions a
JOIN users u ON u.id = a.created_by
WHERE a.organization_id IS NOT DISTINCT FROM $1
  AND ($3 OR a.created_by = $2)
  AND ($4::text IS NULL OR a.status = $4)
  AND ($5::text IS NULL OR a.action = $5)
  AND ($6::uuid IS NULL OR a.created_by = $6)
  AND ($7::timestamptz IS NULL OR a.created_at >= $7)
  AND ($8::timestamptz IS NULL OR a.created_at < $8)
  AND ($9::timestamptz IS NULL OR (a.created_at, a.id) < ($9, $10::uuid))
ORDER BY a.created_at DESC, a.id DESC
LIMIT $11;

-- name: items
-- Each contact's outcome, by contact id after $3, optionally of one status ($2), with what the
-- action recorded of it (a merge: both ids, the campaigns, executions and messages moved). For
-- a send_message action, how its send went (the execution in the action's own campaign).
SELECT i.contact_id, i.status, i.error_code AS code, i.error_message AS message, i.details,
       i.batch_number, i.processed_at, c.telegram_username, c.first_name, c.last_name,
       e.status AS send_status, e.error_message AS send_error
FROM bulk_action_items i
JOIN contacts c ON c.id = i.contact_id
LEFT JOIN campaigns k ON k.bulk_action_id = i.bulk_action_id
LEFT JOIN executions e ON e.campaign_id = k.id AND e.contact_id = i.contact_id
WHERE i.bulk_action_id = $1 AND ($2::text IS NULL OR i.status = $2)
  AND ($3::uuid IS NULL OR i.contact_id > $3)
ORDER BY i.contact_id
LIMIT $4;

-- name: outcome_codes
SELECT status, error_code AS code, count(*) AS contacts
FROM bulk_action_items
WHERE bulk_action_id = $1
GROUP BY status, error_code
ORDER BY status, error_code;

-- name: send_statuses
-- A send_message action's sends, by their execution's status.
SELECT e.status, count(*) AS contacts
FROM campaigns k
JOIN executions e ON e.campaign_id = k.id
WHERE k.bulk_action_id = $1
GROUP BY e.status;

-- Imports (issue 19, item 4): an import_contacts action's items are its upload's rows.

-- name: claim_import
-- The action takes its upload (once), and counts its rows; null if another action has it.
WITH claimed AS (
    UPDATE contact_imports SET bulk_action_id = $2
    WHERE id = $1 AND bulk_action_id IS NULL
    RETURNING rows
), counted AS (
    UPDATE bulk_actions SET total = (SELECT rows FROM claimed) WHERE id = $2
    AND EXISTS (SELECT 1 FROM claimed)
)
SELECT rows FROM claimed;

-- name: import_items
-- Each row's outcome, in line order after $3, optionally of one status ($2).
SELECT r.line, r.contact_id, r.status, r.error_code AS code, r.error_message AS message,
       r.details, r.batch_number, r.processed_at, c.telegram_username, c.first_name,
       c.last_name
FROM contact_imports u
JOIN contact_import_rows r ON r.import_id = u.id
LEFT JOIN contacts c ON c.id = r.contact_id
WHERE u.bulk_action_id = $1 AND ($2::text IS NULL OR r.status = $2) AND r.line > $3
ORDER BY r.line
LIMIT $4;

-- name: import_codes
SELECT r.status, r.error_code AS code, count(*) AS contacts
FROM contact_imports u
JOIN contact_import_rows r ON r.import_id = u.id
WHERE u.bulk_action_id = $1
GROUP BY r.status, r.error_code
ORDER BY r.status, r.error_code;

-- name: skip_pending_rows
-- A cancelled import's rows that never got a batch.
UPDATE contact_import_rows r
SET status = 'skipped', error_code = 'cancelled', error_message = 'the action was cancelled',
    processed_at = $2
FROM contact_imports u
WHERE u.bulk_action_id = $1 AND r.import_id = u.id AND r.status = 'pending';
