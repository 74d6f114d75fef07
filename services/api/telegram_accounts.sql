-- Telegram accounts: the API writes their definition; the sender owns their health columns.
-- Shared by telegram_accounts.py and bulk_actions/ (get: an account the caller sees). Listed
-- in tests/shared/db/test_queries.py.

-- name: insert
-- $10 is the session string and $18 the proxy's password, already encrypted; neither is ever
-- read back by the API. $13 the id, chosen by the caller (the default device is picked by it).
INSERT INTO telegram_accounts (organization_id, owner_user_id, display_name, phone,
                               session_kind, health_status, daily_quota, pacing, simulation,
                               session_string, warm_up, health_detail, id,
                               proxy_type, proxy_host, proxy_port, proxy_username, proxy_secret,
                               device_model, system_version, app_version, lang_code,
                               system_lang_code)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
        $20, $21, $22, $23)
RETURNING *;

-- name: get
-- An account in the caller's context ($2 organization, or $3 the personal owner).
SELECT * FROM telegram_accounts
WHERE id = $1 AND deleted_at IS NULL
  AND organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR owner_user_id = $3);

-- name: list
SELECT * FROM telegram_accounts
WHERE deleted_at IS NULL
  AND organization_id IS NOT DISTINCT FROM $1
  AND ($1::uuid IS NOT NULL OR owner_user_id = $2)
ORDER BY created_at, id;

-- name: update
UPDATE telegram_accounts
SET display_name = $2, daily_quota = $3, pacing = $4, simulation = $5, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: set_proxy
-- A new proxy (all NULL: none); $6 is its password, already encrypted. The sender reconnects
-- through it at its next health check, asked for now (last_checked_at, as request_check).
UPDATE telegram_accounts
SET proxy_type = $2, proxy_host = $3, proxy_port = $4, proxy_username = $5, proxy_secret = $6,
    last_checked_at = CASE WHEN health_status IN ('auth_lost', 'banned') THEN last_checked_at END,
    updated_at = now()
WHERE id = $1
RETURNING *;

-- name: soft_delete
UPDATE telegram_accounts SET deleted_at = now(), updated_at = now() WHERE id = $1;

-- name: hold_executions
-- A deleted account's unfinished executions wait, with the reason: their status stays (so the
-- statistics do not change and need no event), dispatch no longer claims them, and a claim in
-- flight is released so its due event is stale. Locked in id order, as the sender locks them.
WITH held AS (
    SELECT e.id FROM executions e
    JOIN campaigns c ON c.id = e.campaign_id
    WHERE c.telegram_account_id = $1 AND e.deleted_at IS NULL
      AND e.status IN {{EXECUTIONS_IN_MOTION}}
    ORDER BY e.id
    FOR UPDATE OF e
)
UPDATE executions e
SET error_message = 'account_deleted', lease_until = NULL, updated_at = now()
FROM held h
WHERE e.id = h.id;
