-- Bulk operations over campaigns (spec 000): the scheduler resolves the selection into items and
-- changes the campaigns batch by batch; each batch is one transaction.

-- name: operation
SELECT * FROM bulk_operations WHERE id = $1 FOR UPDATE;

-- name: actor_exists
SELECT EXISTS (SELECT 1 FROM users WHERE id = $1);

-- name: published_by_api
-- Whether the request's command (by its operation id $1, the record's key, and message id $2)
-- is in this database's outbox: the API published it on an HTTP request. Walks
-- outbox_bulk_commands_key_idx.
SELECT EXISTS (SELECT 1 FROM outbox
               WHERE topic = 'dripline.bulk.commands' AND key = convert_to($1, 'UTF8')
                 AND message_id = $2);

-- name: record_operation
-- A request as it came, with its actor (audit trail); $8 is when it was asked for, $9 its
-- origin (http: through the API; kafka: published by another system), $10 now.
INSERT INTO bulk_operations (id, organization_id, requested_by, action, selection, options,
                             origin, correlation_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $9, $7, $8, $10)
RETURNING *;

-- name: select_ids
-- Every id named, whether or not it is a campaign the actor can see: those become errors.
INSERT INTO bulk_operation_items (bulk_operation_id, campaign_id)
SELECT $1, id FROM unnest($2::uuid[]) AS id
ON CONFLICT DO NOTHING;

-- name: select_matching
-- "Select all": {where} is the campaign list's filter for the actor (shared/db/campaign_filter.py);
-- $1 is the operation.
INSERT INTO bulk_operation_items (bulk_operation_id, campaign_id)
SELECT $1, c.id FROM campaigns c WHERE {where}
ON CONFLICT DO NOTHING;

-- name: start
UPDATE bulk_operations
SET status = 'processing', started_at = $2, updated_at = $2,
    total = (SELECT count(*) FROM bulk_operation_items WHERE bulk_operation_id = $1)
WHERE id = $1
RETURNING *;

-- name: fail
UPDATE bulk_operations
SET status = 'failed', error_message = $2, completed_at = $3, updated_at = $3
WHERE id = $1
RETURNING *;

-- name: running_operations
-- Operations with batches to apply, the one that waited longest first. Not locked: workers
-- share an operation by claiming its items.
SELECT * FROM bulk_operations
WHERE status = 'processing'
ORDER BY updated_at
LIMIT 20;

-- name: claim_items
-- The next batch: items another worker holds are skipped, so workers apply different batches of
-- one operation at the same time.
SELECT campaign_id FROM bulk_operation_items
WHERE bulk_operation_id = $1 AND status = 'pending'
ORDER BY campaign_id
LIMIT $2
FOR NO KEY UPDATE SKIP LOCKED;

-- name: record_outcomes
-- Each item's outcome: code and message for every result (error_* name the columns of old).
UPDATE bulk_operation_items i
SET status = v.status, error_code = v.code, error_message = v.message,
    cancelled_executions = v.cancelled, processed_at = $2
FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::integer[])
     AS v(campaign_id, status, code, message, cancelled)
WHERE i.bulk_operation_id = $1 AND i.campaign_id = v.campaign_id AND i.status = 'pending';

-- name: count_batch
-- $8: nothing is pending any more, so the operation is complete.
UPDATE bulk_operations
SET processed = processed + $2, success_count = success_count + $3,
    skipped_count = skipped_count + $4, error_count = error_count + $5,
    cancelled_executions = cancelled_executions + $6, updated_at = $7::timestamptz,
    status = CASE WHEN $8::boolean THEN 'completed' ELSE status END,
    completed_at = CASE WHEN $8::boolean THEN $7::timestamptz END
WHERE id = $1
RETURNING *;

-- name: any_pending
SELECT EXISTS (SELECT 1 FROM bulk_operation_items
               WHERE bulk_operation_id = $1 AND status = 'pending');
