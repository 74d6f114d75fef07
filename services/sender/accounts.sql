-- name: set_health
UPDATE telegram_accounts
SET health_status = $2, health_detail = $3, cooldown_until = $4, last_checked_at = $5,
    updated_at = $5
WHERE id = $1;

-- name: account_health
SELECT health_status, cooldown_until FROM telegram_accounts WHERE id = $1;

-- name: accounts_by_health
-- dripline_telegram_accounts: a count over the (small) accounts table, every sweep.
SELECT health_status, count(*) AS accounts
FROM telegram_accounts
WHERE deleted_at IS NULL
GROUP BY health_status;

-- name: accounts_to_probe
-- The accounts the health check probes now: not checked since $1, or waiting out a cooldown.
SELECT id, session_kind, simulation, health_status, cooldown_until, pacing, daily_quota,
       created_at, warm_up
FROM telegram_accounts
WHERE deleted_at IS NULL AND health_status NOT IN ('auth_lost', 'banned')
  AND (last_checked_at IS NULL OR last_checked_at < $1 OR health_status = 'cooldown')
LIMIT 100
FOR UPDATE SKIP LOCKED;
