-- name: set_health
-- With when the next check is due ($6, NULL: the regular interval), the checks in a row that
-- found the account limited, frozen or unreachable ($7, for the backoffs), the end Telegram
-- gave a limit or freeze ($8) and a freeze's appeal link ($9). troubled_at: the last moment the
-- account was seen limited, frozen or cooling down (entering, staying or leaving), for the
-- fleet breaker's window (shared/domain/breaker.py).
UPDATE telegram_accounts
SET health_status = $2, health_detail = $3, cooldown_until = $4, last_checked_at = $5,
    next_check_at = $6, check_streak = $7, health_until = $8, appeal_url = $9,
    troubled_at = CASE WHEN health_status IN ('limited', 'frozen', 'cooldown')
                         OR $2 IN ('limited', 'frozen', 'cooldown') THEN $5
                       ELSE troubled_at END,
    updated_at = $5
WHERE id = $1;

-- name: reschedule_check
-- A check that could not reach Telegram while the account is limited or frozen: the state and
-- what Telegram said of it stay (only @SpamBot or getAppConfig may lift them); asked again $3.
UPDATE telegram_accounts
SET last_checked_at = $2, next_check_at = $3, check_streak = check_streak + 1, updated_at = $2
WHERE id = $1;

-- name: checked_elsewhere
-- Another sender holds the account's session: nothing about the account changes; due again $3.
UPDATE telegram_accounts SET last_checked_at = $2, next_check_at = $3, updated_at = $2
WHERE id = $1;

-- name: account_health
SELECT health_status, cooldown_until, check_streak FROM telegram_accounts WHERE id = $1;

-- name: accounts_by_health
-- dripline_telegram_accounts: a count over the (small) accounts table, every sweep.
SELECT health_status, count(*) AS accounts
FROM telegram_accounts
WHERE deleted_at IS NULL
GROUP BY health_status;

-- name: accounts_to_probe
-- The accounts the health check probes now: those on a backoff (limited, frozen, disconnected)
-- when it is due ($2 is now), the others when not checked since $1 or waiting out a cooldown;
-- and any whose check was asked for (last_checked_at cleared, by the API). The states only a
-- person ends are never probed: a session in conflict must not be used at all.
-- NO KEY UPDATE: a row inserted that references the account (a message, an update) holds KEY
-- SHARE on it, which the strongest row lock conflicts with: SKIP LOCKED would then pass over
-- every busy account.
SELECT id, session_kind, simulation, health_status, cooldown_until, pacing, daily_quota,
       created_at, warm_up, check_streak
FROM telegram_accounts
WHERE deleted_at IS NULL AND health_status NOT IN ('auth_lost', 'session_conflict', 'banned')
  AND (last_checked_at IS NULL
       OR (next_check_at IS NULL AND (last_checked_at < $1 OR health_status = 'cooldown'))
       OR next_check_at <= $2)
LIMIT 100
FOR NO KEY UPDATE SKIP LOCKED;
