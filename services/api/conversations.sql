-- The unified inbox (docs/inbox.md). A conversation is visible to a caller who may view its
-- campaign (shared.domain.permissions.can_view, in SQL): the campaign is in the caller's
-- context ($1 organization, or none in personal mode), and the caller made it or sees others'
-- ($3: an owner or admin with admin view on).

-- name: list
-- Newest activity first, keyset pages after ($4, $5); filters: $6 unread only, $7 account,
-- $8 campaign, $9 a contact tag, $10 replied since.
SELECT cv.*, ct.first_name, ct.last_name, ct.telegram_username, ct.tags AS contact_tags,
       a.display_name AS account_name, cp.name AS campaign_name
FROM conversations cv
JOIN campaigns cp ON cp.id = cv.campaign_id
JOIN contacts ct ON ct.id = cv.contact_id
JOIN telegram_accounts a ON a.id = cv.telegram_account_id
WHERE cp.organization_id IS NOT DISTINCT FROM $1
  AND (cp.created_by = $2 OR $3::boolean)
  AND ($4::timestamptz IS NULL OR (cv.last_message_at, cv.id) < ($4, $5::uuid))
  AND (NOT $6::boolean OR cv.unread_count > 0)
  AND ($7::uuid IS NULL OR cv.telegram_account_id = $7)
  AND ($8::uuid IS NULL OR cv.campaign_id = $8)
  AND ($9::text IS NULL OR ct.tags @> ARRAY[$9::text])
  AND ($10::timestamptz IS NULL OR cv.last_reply_at >= $10)
ORDER BY cv.last_message_at DESC, cv.id DESC
LIMIT $11;

-- name: get
-- One conversation with what the visibility rule needs; $2 locks it (FOR UPDATE is chosen by
-- the caller through the `lock` block).
SELECT cv.*, ct.first_name, ct.last_name, ct.telegram_username, ct.tags AS contact_tags,
       a.display_name AS account_name, cp.name AS campaign_name,
       cp.created_by AS campaign_created_by, cp.organization_id AS campaign_organization_id
FROM conversations cv
JOIN campaigns cp ON cp.id = cv.campaign_id
JOIN contacts ct ON ct.id = cv.contact_id
JOIN telegram_accounts a ON a.id = cv.telegram_account_id
WHERE cv.id = $1;

-- name: lock
-- The conversation, then what an answer checks: whether its account and contact may still be
-- written to (deleted, or on the do-not-contact list).
SELECT cv.id, cv.telegram_account_id, cv.contact_id, cv.campaign_id, cv.execution_id,
       cv.taken_over_at, a.deleted_at AS account_deleted_at,
       ct.deleted_at AS contact_deleted_at,
       do_not_contact_listed(ct.organization_id, ct.owner_user_id, ct.id, ct.telegram_user_id,
                             ct.telegram_username, ct.phone) AS do_not_contact
FROM conversations cv
JOIN telegram_accounts a ON a.id = cv.telegram_account_id
JOIN contacts ct ON ct.id = cv.contact_id
WHERE cv.id = $1
FOR UPDATE OF cv;

-- name: messages
-- The history, ours and theirs, oldest first (a queued answer at the time it was written;
-- Telegram's times are whole seconds, so ties go in the order the records were written),
-- keyset pages after ($3, $4, $5).
SELECT m.id, m.direction, m.body, m.status, m.campaign_id, m.execution_id, m.node_id,
       m.telegram_message_id, m.error_message,
       coalesce(m.sent_at, m.created_at) AS at, m.sent_at, m.delivered_at, m.read_at,
       m.created_at
FROM messages m
WHERE m.telegram_account_id = $1 AND m.contact_id = $2
  AND ($3::timestamptz IS NULL
       OR (coalesce(m.sent_at, m.created_at), m.created_at, m.id) > ($3, $4, $5::uuid))
ORDER BY coalesce(m.sent_at, m.created_at), m.created_at, m.id
LIMIT $6;

-- name: mark_read
UPDATE conversations SET unread_count = 0, updated_at = $2 WHERE id = $1;

-- name: record_answer
-- A person's answer, queued for the sender (execution_id null: it is no step of the flow, and
-- the campaign's statistics count the flow's sends only). $6 the send key.
INSERT INTO messages (campaign_id, execution_id, contact_id, telegram_account_id, direction,
                      body, status, send_key, random_id, created_at)
VALUES ($1, NULL, $2, $3, 'outgoing', $4, 'queued', $6, $5, $7)
RETURNING id, direction, body, status, campaign_id, execution_id, node_id, telegram_message_id,
          error_message, coalesce(sent_at, created_at) AS at, sent_at, delivered_at, read_at,
          created_at;

-- name: take_over
-- The conversation is a person's from now on; its execution is held (dispatch does not claim
-- it, the sender does not step it), and a claim in flight is released so its due event is
-- stale. Returns the moment it was taken over (the first time's, if it already was).
WITH held AS (
    UPDATE executions SET taken_over_at = coalesce(taken_over_at, $3), lease_until = NULL,
                          updated_at = $3
    WHERE id = $4
)
UPDATE conversations
SET taken_over_at = coalesce(taken_over_at, $3), taken_over_by = coalesce(taken_over_by, $2),
    unread_count = 0, updated_at = $3
WHERE id = $1
RETURNING taken_over_at;

-- name: lock_execution
SELECT id FROM executions WHERE id = $1 FOR UPDATE;

-- name: release
-- The flow goes on where it stood: the execution may be claimed again (a wait that ran out
-- while it was held is due at once).
WITH freed AS (
    UPDATE executions SET taken_over_at = NULL, updated_at = $2
    WHERE id = $3
)
UPDATE conversations SET taken_over_at = NULL, taken_over_by = NULL, updated_at = $2
WHERE id = $1;
