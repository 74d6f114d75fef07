-- name: message_by_random_id
-- Our outgoing message behind a reply or read, with its execution.
SELECT m.id, m.execution_id, m.campaign_id, m.contact_id, m.telegram_account_id,
       m.telegram_message_id, m.sent_at
FROM messages m
WHERE m.telegram_account_id = $1 AND m.random_id = $2 AND m.direction = 'outgoing';

-- name: confirm_delivery
-- A read confirms every outgoing message to the contact up to this one; a reply does too.
-- A message's first confirmation is logged (delivery_confirmed), later reads are not: the rows
-- are locked first so that "first" is judged on their latest version.
WITH target AS (
    SELECT id, delivered_at IS NULL AS first_confirmation
    FROM messages
    WHERE execution_id = $1 AND direction = 'outgoing' AND status IN ('sent', 'delivered')
      AND telegram_message_id <= $2
    FOR UPDATE
), confirmed AS (
    UPDATE messages m
    SET status = CASE WHEN $4::text = 'read' THEN 'read'
                      WHEN m.status = 'sent' THEN 'delivered' ELSE m.status END,
        delivered_at = coalesce(m.delivered_at, $3::timestamptz),
        read_at = CASE WHEN $4::text = 'read' THEN coalesce(m.read_at, $3::timestamptz)
                       ELSE m.read_at END
    FROM target t
    WHERE m.id = t.id
    RETURNING m.id, m.campaign_id, m.execution_id, m.contact_id, m.node_id, t.first_confirmation
), logged AS (
    INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                                node_type, event, status, message, details, created_at)
    SELECT f.campaign_id, f.execution_id, f.contact_id,
           log_contact_text(c.first_name, c.last_name, c.telegram_username), f.node_id,
           'send_message', 'delivery_confirmed', 'ok', $4::text,
           jsonb_build_object('message_id', f.id, 'via', $4::text), $3::timestamptz
    FROM confirmed f
    JOIN contacts c ON c.id = f.contact_id
    WHERE f.first_confirmation
)
SELECT id FROM confirmed;

-- name: record_reply
-- Logged (reply_received) at the node the execution stands on when the reply comes in.
WITH reply AS (
    INSERT INTO messages (campaign_id, execution_id, contact_id, telegram_account_id, direction,
                          body, status, sent_at)
    VALUES ($1, $2, $3, $4, 'incoming', $5, 'received', $6)
    RETURNING id, campaign_id, execution_id, contact_id, body, sent_at
), logged AS (
    INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                                node_type, event, status, message, details, created_at)
    SELECT r.campaign_id, r.execution_id, r.contact_id,
           log_contact_text(c.first_name, c.last_name, c.telegram_username), e.current_node_id,
           (SELECT n ->> 'type' FROM jsonb_array_elements(cp.flow -> 'nodes') AS n
            WHERE n ->> 'id' = e.current_node_id LIMIT 1),
           'reply_received', 'ok', r.body, jsonb_build_object('message_id', r.id), r.sent_at
    FROM reply r
    JOIN contacts c ON c.id = r.contact_id
    LEFT JOIN executions e ON e.id = r.execution_id
    LEFT JOIN campaigns cp ON cp.id = r.campaign_id
)
SELECT id FROM reply;
