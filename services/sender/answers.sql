-- Telegram's answers to sends, recorded after the step's transaction committed: sent (many at
-- once), failed for the message, or failed for the account (issue 13: a late answer moves only
-- what still stands on its record).

-- name: mark_sent_many
-- Each message leaves 'queued' once, so it is logged as sent once. Returns
-- the records this answer changed: only those may move their executions (an answer to a record
-- that is no longer queued is late, and another answer has already moved its execution on).
WITH sent AS (
    UPDATE messages m SET status = 'sent', telegram_message_id = s.telegram_message_id,
                          sent_at = s.sent_at
    FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[])
         AS s (id, telegram_message_id, sent_at)
    WHERE m.id = s.id AND m.status = 'queued'
    RETURNING m.id, m.campaign_id, m.execution_id, m.contact_id, m.telegram_account_id,
              m.node_id, m.variant, m.body, m.sent_at, m.send_key
), logged AS (
    INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                                node_type, event, status, message, details, created_at)
    SELECT s.campaign_id, s.execution_id, s.contact_id,
           log_contact_text(c.first_name, c.last_name, c.telegram_username), s.node_id,
           'send_message', 'message_sent', 'ok', s.body,
           jsonb_build_object('message_id', s.id, 'variant', s.variant), s.sent_at
    FROM sent s
    JOIN contacts c ON c.id = s.contact_id
), talked AS (
    -- The inbox (0020): each (account, contact)'s conversation shows its latest message (one
    -- row per conversation, so the upsert touches each once).
    INSERT INTO conversations AS cv (telegram_account_id, contact_id, campaign_id, execution_id,
                                     last_message_id, last_direction, last_body,
                                     last_message_at, updated_at)
    SELECT DISTINCT ON (s.telegram_account_id, s.contact_id)
           s.telegram_account_id, s.contact_id, s.campaign_id, s.execution_id, s.id,
           'outgoing', s.body, s.sent_at, s.sent_at
    FROM sent s
    WHERE s.telegram_account_id IS NOT NULL
    ORDER BY s.telegram_account_id, s.contact_id, s.sent_at DESC, s.id DESC
    ON CONFLICT (telegram_account_id, contact_id) DO UPDATE
    SET campaign_id = coalesce(excluded.campaign_id, cv.campaign_id),
        execution_id = coalesce(excluded.execution_id, cv.execution_id),
        last_message_id = excluded.last_message_id, last_direction = 'outgoing',
        last_body = excluded.last_body, last_message_at = excluded.last_message_at,
        updated_at = excluded.updated_at
    WHERE cv.last_message_at <= excluded.last_message_at
)
SELECT id, campaign_id, execution_id, contact_id, telegram_account_id, node_id, variant,
       send_key
FROM sent;

-- name: lock_send_record
-- The send record an answer belongs to, locked (after its execution) while the answer is
-- applied.
SELECT id, status, node_id, send_key FROM messages WHERE id = $1 FOR UPDATE;

-- name: mark_failed
UPDATE messages SET status = 'failed', error_code = $2, error_message = $3 WHERE id = $1;

-- name: drop_send_record
-- Telegram refused before accepting (flood wait, limits, dead account): nothing was sent.
DELETE FROM messages WHERE id = $1 AND status = 'queued';

-- name: record_flood
-- A flood error today: the rest of today's budget of new peers is cut.
UPDATE telegram_accounts SET flood_on = $2 WHERE id = $1;

-- name: interrupt_execution
-- Its account is dead (auth lost, session conflict, banned): paused where it stands (node and
-- send count kept), with the reason; a relaunch of the campaign continues it (issue 16).
UPDATE executions SET status = 'paused', error_message = $2, lease_until = NULL, updated_at = $3
WHERE id = $1;

-- name: defer_execution
-- Not now (a cooldown, a limit, a transient failure): due again at $2, nothing else changes.
UPDATE executions SET next_execution_at = $2, lease_until = NULL, attempts = attempts + $3,
                      updated_at = $4
WHERE id = $1;

-- name: attachments
-- The photos and documents of the sends about to go (the bytes too).
SELECT id, kind, filename, content_type, data FROM attachments WHERE id = ANY($1::uuid[]);
