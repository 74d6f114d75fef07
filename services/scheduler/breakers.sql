-- The fleet circuit breaker (issue 14, item 4): one row per context (an organization, or a
-- user in personal mode), evaluated when an account's health changes and by the sweep.

-- name: account_context
-- The context an account sends for: its organization, or its owner in personal mode.
SELECT organization_id, CASE WHEN organization_id IS NULL THEN owner_user_id END AS user_id
FROM telegram_accounts WHERE id = $1;

-- name: ensure_breaker
-- The context's breaker, made on first need (a concurrent insert waits for the other's commit).
INSERT INTO fleet_breakers (organization_id, user_id, evaluated_at)
VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING;

-- name: lock_breaker
-- Locked before the accounts are read, so two evaluations of one context take turns and the
-- second reads what the first committed. Always the last lock a transaction takes.
SELECT id, tripped_at, reason FROM fleet_breakers
WHERE organization_id IS NOT DISTINCT FROM $1 AND user_id IS NOT DISTINCT FROM $2
FOR UPDATE;

-- name: fleet
-- The context's accounts (not deleted): their health and last moment in trouble.
SELECT health_status, troubled_at
FROM telegram_accounts
WHERE deleted_at IS NULL
  AND CASE WHEN $1::uuid IS NOT NULL THEN organization_id = $1
           ELSE organization_id IS NULL AND owner_user_id = $2 END;

-- name: organization_settings
SELECT settings FROM organizations WHERE id = $1;

-- name: set_breaker
UPDATE fleet_breakers
SET tripped_at = $2, reason = $3, troubled = $4, sending = $5, evaluated_at = $6
WHERE id = $1;

-- name: contexts_to_sweep
-- The contexts the sweep evaluates: those paused, every time (the hour's window ends with no
-- health change), and those with an account in trouble now or within the window ($1: now minus
-- the window) not evaluated since $2 (a breaker not paused never trips with time alone: only a
-- change the API made, to the policy or the accounts, or an event not seen yet, is caught so).
SELECT organization_id, user_id FROM fleet_breakers WHERE tripped_at IS NOT NULL
UNION
SELECT t.organization_id, t.user_id
FROM (SELECT DISTINCT organization_id,
             CASE WHEN organization_id IS NULL THEN owner_user_id END AS user_id
      FROM telegram_accounts
      WHERE deleted_at IS NULL
        AND (health_status IN ('limited', 'frozen', 'cooldown') OR troubled_at > $1)) t
WHERE NOT EXISTS (SELECT 1 FROM fleet_breakers b
                  WHERE b.evaluated_at > $2
                    AND (b.organization_id = t.organization_id
                         OR (t.organization_id IS NULL AND b.user_id = t.user_id)));

-- name: tripped
-- dripline_fleet_breakers_tripped: contexts whose sending is paused now.
SELECT count(*) FROM fleet_breakers WHERE tripped_at IS NOT NULL;
