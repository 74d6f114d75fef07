-- name: accounts_to_probe
SELECT id, session_kind, simulation, health_status, cooldown_until, pacing, daily_quota,
       created_at, warm_up
FROM telegram_accounts
WHERE deleted_at IS NULL AND health_status NOT IN ('auth_lost', 'banned')
  AND (last_checked_at IS NULL OR last_checked_at < $1 OR health_status = 'cooldown')
LIMIT 100
FOR UPDATE SKIP LOCKED;

-- Set-based forms of the step's queries: a consumed batch of due events is stepped in one
-- transaction (atomic per execution; many executions' steps share it).
