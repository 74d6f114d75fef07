-- name: upsert_user
-- A user by e-mail, created on first sight.
INSERT INTO users (email, name) VALUES ($1, $2)
ON CONFLICT ((lower(email))) DO UPDATE SET name = coalesce(excluded.name, users.name)
RETURNING id, email, name;

-- name: insert_api_key
INSERT INTO api_keys (user_id, name, key_prefix, key_hash) VALUES ($1, $2, $3, $4)
RETURNING id, created_at;

-- name: list_api_keys
SELECT id, name, key_prefix, created_at, last_used_at
FROM api_keys
WHERE user_id = $1 AND revoked_at IS NULL
ORDER BY created_at, id;

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = now()
WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
RETURNING id;

-- name: authenticate
-- The user behind a key; touches last_used_at at most once a minute to spare writes.
WITH key AS (
    SELECT k.id, k.user_id FROM api_keys k WHERE k.key_hash = $1 AND k.revoked_at IS NULL
), touched AS (
    UPDATE api_keys SET last_used_at = now()
    WHERE id = (SELECT id FROM key)
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
)
SELECT u.id, u.email FROM key JOIN users u ON u.id = key.user_id;

-- name: membership
SELECT m.role, o.admin_view_enabled
FROM memberships m JOIN organizations o ON o.id = m.organization_id
WHERE m.organization_id = $1 AND m.user_id = $2;

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
