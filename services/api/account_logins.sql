-- Phone logins as the API reads them; the sender writes telegram_logins (services/sender/logins.sql).

-- name: login_of
-- Whether login $1 is user $2's (the check before a step's command, so a stranger's login id
-- is a 404 with no round trip).
SELECT EXISTS (SELECT 1 FROM telegram_logins WHERE id = $1 AND owner_user_id = $2);

-- name: login
-- User $2's login $1; `pending` is whether it can still go on at $3 (its key is kept, unexpired).
SELECT status, telegram_account_id, expires_at, failure_code,
       pending_secret IS NOT NULL AND expires_at > $3 AS pending
FROM telegram_logins
WHERE id = $1 AND owner_user_id = $2;
