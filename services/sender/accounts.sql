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
