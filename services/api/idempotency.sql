-- name: claim_idempotency_key
-- The first request under a key claims it (response_status 0 while it runs). A claim older than
-- a day is stale and taken over.
INSERT INTO idempotency_keys (user_id, key, request_hash, response_status, response_body)
VALUES ($1, $2, $3, 0, 'null'::jsonb)
ON CONFLICT (user_id, key) DO UPDATE
SET request_hash = excluded.request_hash, response_status = 0, response_body = 'null'::jsonb,
    created_at = now()
WHERE idempotency_keys.created_at < now() - interval '1 day'
RETURNING key;

-- name: get_idempotency_key
SELECT request_hash, response_status, response_body
FROM idempotency_keys WHERE user_id = $1 AND key = $2;

-- name: store_idempotent_response
UPDATE idempotency_keys SET response_status = $3, response_body = $4
WHERE user_id = $1 AND key = $2;

-- name: release_idempotency_key
DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2;
