-- name: list_api_keys
SELECT id, name, key_prefix, created_at, last_used_at
FROM api_keys
WHERE user_id = $1 AND revoked_at IS NULL
ORDER BY created_at, id;

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = now()
WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
RETURNING id;
