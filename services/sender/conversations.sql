-- The inbox's commands (docs/inbox.md): a person's answer, sent with the account's pacing and
-- health rules, and a read receipt.

-- name: lock_account
-- The answer's account, locked first (as a step locks the accounts of its sends), with its
-- pace.
SELECT id, session_kind, simulation, pacing, health_status, cooldown_until, last_send_at,
       daily_quota, sent_today, quota_day, flood_on, created_at, deleted_at
FROM telegram_accounts
WHERE id = $1
FOR UPDATE;

-- name: lock_answer
-- The queued answer, with the contact's ways of being reached and whether it may still be
-- written to.
SELECT m.id, m.status, m.body, m.random_id, m.contact_id, m.campaign_id,
       ct.telegram_username, ct.phone, ct.telegram_user_id, ct.deleted_at AS contact_deleted_at,
       do_not_contact_listed(ct.organization_id, ct.owner_user_id, ct.id, ct.telegram_user_id,
                             ct.telegram_username, ct.phone) AS do_not_contact
FROM messages m
JOIN contacts ct ON ct.id = m.contact_id
WHERE m.id = $1 AND m.telegram_account_id = $2 AND m.direction = 'outgoing'
  AND m.execution_id IS NULL
FOR UPDATE OF m;

-- name: reserve
-- The answer's turn in the account's pace ($2: when it goes): later sends wait their gap after
-- it.
UPDATE telegram_accounts SET last_send_at = greatest(last_send_at, $2) WHERE id = $1;

-- name: mark_failed
UPDATE messages SET status = 'failed', error_code = $2, error_message = $3
WHERE id = $1 AND status = 'queued';

-- name: mark_sent
-- Sent: the conversation shows it as its latest message (the upsert of answers.sql's
-- mark_sent_many, for one message).
WITH sent AS (
    UPDATE messages SET status = 'sent', telegram_message_id = $2, sent_at = $3
    WHERE id = $1 AND status = 'queued'
    RETURNING id, contact_id, telegram_account_id, body, sent_at
)
UPDATE conversations cv
SET last_message_id = s.id, last_direction = 'outgoing', last_body = s.body,
    last_message_at = s.sent_at, updated_at = s.sent_at
FROM sent s
WHERE cv.telegram_account_id = s.telegram_account_id AND cv.contact_id = s.contact_id
  AND cv.last_message_at <= s.sent_at
RETURNING s.id;

-- name: conversation
SELECT cv.telegram_account_id, cv.contact_id, a.session_kind, a.simulation,
       a.deleted_at AS account_deleted_at, ct.telegram_username, ct.phone, ct.telegram_user_id
FROM conversations cv
JOIN telegram_accounts a ON a.id = cv.telegram_account_id
JOIN contacts ct ON ct.id = cv.contact_id
WHERE cv.id = $1 AND cv.telegram_account_id = $2;
