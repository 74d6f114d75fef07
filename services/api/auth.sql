-- Shared by auth.py and idempotency.py (authenticate: a key is scoped to its user before the
-- request runs). Listed in tests/shared/db/test_queries.py.

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
