-- Phone logins and session imports (dripline.account.commands), answered on
-- dripline.account.events. The sender is the only writer of telegram_logins.

-- name: forget_expired
-- Pending logins past their expiry lose their auth key ($1: now): nothing keeps a half-done
-- login's key longer than it can be used.
UPDATE telegram_logins
SET pending_secret = NULL, status = 'failed', failure_code = 'login_expired', updated_at = $1
WHERE pending_secret IS NOT NULL AND expires_at <= $1;

-- name: account_of_phone
-- The live account of context $1 (an organization, or user $2's personal accounts when NULL)
-- already connected with phone $3, compared by its digits: one Telegram user is one account,
-- or two would share (and double) its quotas and pace.
SELECT id, display_name, health_status
FROM telegram_accounts
WHERE deleted_at IS NULL AND phone IS NOT NULL
  AND organization_id IS NOT DISTINCT FROM $1
  AND ($1::uuid IS NOT NULL OR owner_user_id = $2)
  AND regexp_replace(phone, '[^0-9]', '', 'g') = regexp_replace($3, '[^0-9]', '', 'g')
ORDER BY created_at
LIMIT 1;

-- name: account_to_log_in_again
-- The Telethon account $1, locked, if actor $3 may manage it in context $2: its personal owner,
-- or in an organization its owner or an organization owner or admin. Its phone, device and
-- proxy (the password sealed): logging it in again connects the way it always does.
SELECT a.id, a.organization_id, a.owner_user_id, a.display_name, a.phone, a.session_kind,
       a.health_status, a.device_model, a.system_version, a.app_version, a.lang_code,
       a.system_lang_code, a.proxy_type, a.proxy_host, a.proxy_port, a.proxy_username,
       a.proxy_secret
FROM telegram_accounts a
WHERE a.id = $1 AND a.deleted_at IS NULL
  AND a.organization_id IS NOT DISTINCT FROM $2
  AND CASE WHEN $2::uuid IS NULL THEN a.owner_user_id = $3
           ELSE a.owner_user_id = $3
                OR EXISTS (SELECT 1 FROM memberships m
                           WHERE m.organization_id = $2 AND m.user_id = $3
                             AND m.role IN ('owner', 'admin')) END
FOR UPDATE OF a;

-- name: insert_login
-- A started login: the code was sent; its pending key is sealed.
INSERT INTO telegram_logins (id, organization_id, owner_user_id, telegram_account_id, relogin,
                             phone, display_name, api_id, api_hash_secret, status,
                             pending_secret, expires_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'code_sent', $10, $11, $12, $12);

-- name: login_to_continue
-- Actor $2's login $1, locked for its next step.
SELECT id, organization_id, owner_user_id, telegram_account_id, relogin, phone, display_name,
       api_id, api_hash_secret, status, pending_secret, failure_code, expires_at
FROM telegram_logins
WHERE id = $1 AND owner_user_id = $2
FOR UPDATE;

-- name: login_waits_for_password
-- The code was right and the account has a 2FA password: the pending login, sealed again.
UPDATE telegram_logins
SET status = 'password_needed', pending_secret = $2, updated_at = $3
WHERE id = $1;

-- name: login_failed
-- A refusal that ends the login (a new code is needed, or Telegram forgot it): its key goes.
UPDATE telegram_logins
SET status = 'failed', pending_secret = NULL, failure_code = $2, updated_at = $3
WHERE id = $1;

-- name: login_finished
UPDATE telegram_logins
SET status = 'logged_in', pending_secret = NULL, updated_at = $2
WHERE id = $1;

-- name: insert_account
-- A Telethon account brought in by a login or an import, with its sealed session and the device
-- it logged in as. Not known to work until the sender's first health check (as an account
-- registered through POST /telegram-accounts); new, so it warms up. $13-$17: the proxy it logged
-- in through (all NULL: none), its password sealed by the API.
INSERT INTO telegram_accounts (id, organization_id, owner_user_id, display_name, phone,
                               session_kind, session_string, health_status, health_detail,
                               daily_quota, warm_up, device_model, system_version, app_version,
                               lang_code, system_lang_code, created_at, updated_at,
                               proxy_type, proxy_host, proxy_port, proxy_username, proxy_secret)
VALUES ($1, $2, $3, $4, $5, 'telethon', $6, 'disconnected', 'waiting for the first health check',
        20, true, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16, $17);

-- name: logged_in_again
-- An account logged in again in place: the new session replaces the lost one and it may send
-- again at once (warming if it still ramps up). Its previous status, for the event.
UPDATE telegram_accounts a
SET session_string = $2,
    health_status = CASE WHEN a.warm_up THEN 'warming' ELSE 'active' END,
    health_detail = 'logged in again', last_checked_at = $3, cooldown_until = NULL,
    updated_at = $3
FROM (SELECT health_status FROM telegram_accounts WHERE id = $1) previous
WHERE a.id = $1
RETURNING previous.health_status AS previous_status, a.health_status;
