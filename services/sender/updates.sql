-- name: message_by_random_id
-- Our outgoing message behind a reply or read, with its execution, and what an opt-out needs:
-- the contact's identifiers and list, and its organization's opt-out phrases (null: defaults);
-- the contact's company and the campaign's stop_company_on_reply (null: off).
-- A person's answer from the inbox belongs to no execution: a reply to it belongs to its
-- conversation's.
SELECT m.id, coalesce(m.execution_id, cv.execution_id) AS execution_id, m.campaign_id, m.contact_id, m.telegram_account_id,
       m.telegram_message_id, m.sent_at,
       ct.organization_id, ct.owner_user_id, ct.telegram_user_id, ct.telegram_username,
       ct.phone, o.settings -> 'opt_out_phrases' AS opt_out_phrases, ct.company_id,
       cp.settings -> 'response_handling' ->> 'stop_company_on_reply' AS company_on_reply
FROM messages m
JOIN contacts ct ON ct.id = m.contact_id
LEFT JOIN organizations o ON o.id = ct.organization_id
LEFT JOIN campaigns cp ON cp.id = m.campaign_id
LEFT JOIN conversations cv ON m.execution_id IS NULL
     AND cv.telegram_account_id = m.telegram_account_id AND cv.contact_id = m.contact_id
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

-- name: record_in_conversation
-- The inbox (0020): the reply ($1 its id, $2 the account, $3 the contact) is the (account,
-- contact) conversation's latest message, one more unread. Written last in the reply's
-- transaction, after the execution is locked: a send's answer (answers.py record_sent) also
-- locks the execution before the conversation, so the two cannot deadlock.
INSERT INTO conversations AS cv (telegram_account_id, contact_id, campaign_id, execution_id,
                                 last_message_id, last_direction, last_body, last_message_at,
                                 last_reply_at, unread_count, updated_at)
VALUES ($2, $3, $4, $5, $1, 'incoming', $6, $7, $7, 1, $7)
ON CONFLICT (telegram_account_id, contact_id) DO UPDATE
SET campaign_id = excluded.campaign_id, execution_id = excluded.execution_id,
    last_message_id = excluded.last_message_id, last_direction = 'incoming',
    last_body = excluded.last_body,
    last_message_at = greatest(cv.last_message_at, excluded.last_message_at),
    last_reply_at = greatest(cv.last_reply_at, excluded.last_reply_at),
    unread_count = cv.unread_count + 1, updated_at = excluded.updated_at
RETURNING id, unread_count;

-- name: list_opt_out
-- An opt-out reply lists the person under each identifier the contact has ($6/$7: kinds and
-- normalised values), in the contact's list, reason request, source reply. An identifier
-- already listed keeps its entry. Returns the entries added.
INSERT INTO do_not_contact (organization_id, user_id, kind, value, reason, source, contact_id,
                            created_at)
SELECT $1, CASE WHEN $1::uuid IS NULL THEN $2::uuid END, k.kind, k.value, 'request', 'reply',
       $3, $4
FROM unnest($5::text[], $6::text[]) AS k (kind, value)
ON CONFLICT (list_id, kind, value) DO NOTHING
RETURNING id, list_id, organization_id, user_id, kind, value, reason, source, contact_id,
          added_by;

-- name: lock_person
-- The executions an opt-out ends, locked in id order (the order the sender's steps lock them,
-- so the two cannot deadlock): the contact's unfinished ones in every campaign, and the one
-- replied to.
SELECT id FROM executions
WHERE contact_id = $1 AND deleted_at IS NULL
  AND (id = $2 OR status IN {{EXECUTIONS_UNFINISHED}})
ORDER BY id
FOR UPDATE;

-- name: opt_out
-- The execution replied to ($2) is completed with opted_out (also one that had already
-- completed: the opt-out still counts); the contact's other unfinished executions are cancelled
-- with do_not_contact. Each is logged (opted_out); their queued sends go, so the statistics do
-- not count them in flight for ever. Returns what changed, for the events.
WITH target AS (
    SELECT e.id, e.campaign_id, e.contact_id, e.status AS previous_status, e.current_node_id,
           CASE WHEN e.id = $2 THEN 'completed' ELSE 'cancelled' END AS status,
           CASE WHEN e.id = $2 THEN 'opted_out' ELSE 'do_not_contact' END AS reason
    FROM executions e
    WHERE e.contact_id = $1 AND e.deleted_at IS NULL
      AND (e.status IN {{EXECUTIONS_UNFINISHED}}
           OR (e.id = $2 AND e.status = 'completed'))
), changed AS (
    UPDATE executions e
    SET status = t.status, error_message = t.reason, completed_at = coalesce(e.completed_at, $3),
        next_execution_at = NULL, lease_until = NULL, updated_at = $3
    FROM target t
    WHERE e.id = t.id
    RETURNING e.id
), dropped AS (
    DELETE FROM messages m
    USING target t
    WHERE m.execution_id = t.id AND m.direction = 'outgoing' AND m.status = 'queued'
), logged AS (
    INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                                node_type, event, status, message, details, created_at)
    SELECT t.campaign_id, t.id, t.contact_id,
           log_contact_text(c.first_name, c.last_name, c.telegram_username), t.current_node_id,
           (SELECT n ->> 'type' FROM jsonb_array_elements(cp.flow -> 'nodes') AS n
            WHERE n ->> 'id' = t.current_node_id LIMIT 1),
           'opted_out', 'ok', t.reason, jsonb_build_object('replied_execution_id', $2::uuid), $3
    FROM target t
    JOIN contacts c ON c.id = t.contact_id
    JOIN campaigns cp ON cp.id = t.campaign_id
)
SELECT t.id, t.campaign_id, t.contact_id, t.previous_status, t.status, t.current_node_id,
       t.reason
FROM target t;

-- name: lock_company
-- A reply of a contact in a company, in a campaign with stop_company_on_reply on: the other
-- contacts' unfinished executions of the same company in that campaign ($1 the campaign, $2 the
-- company, $3 the contact who replied), the execution replied to ($4), and with an opt-out ($5)
-- the replier's unfinished executions in every campaign (lock_person's), all locked at once in
-- id order (the order the sender's steps lock them, so the two cannot deadlock), before the
-- reply is written. Returns the colleagues' executions, for crm.on_company_reply.
SELECT e.id, e.campaign_id, e.contact_id, e.status, e.current_node_id,
       e.taken_over_at IS NOT NULL AS taken_over
FROM executions e
WHERE e.id IN (
    SELECT x.id FROM executions x
    JOIN contacts c ON c.id = x.contact_id
    WHERE x.campaign_id = $1 AND c.company_id = $2 AND x.contact_id <> $3
      AND x.deleted_at IS NULL AND x.status IN {{EXECUTIONS_UNFINISHED}}
    UNION ALL
    SELECT $4::uuid
    UNION ALL
    SELECT y.id FROM executions y
    WHERE $5::boolean AND y.contact_id = $3 AND y.deleted_at IS NULL
      AND y.status IN {{EXECUTIONS_UNFINISHED}}
)
ORDER BY e.id
FOR UPDATE OF e;

-- name: company_replied
-- The colleagues' executions ($1, to statuses $2: cancelled or paused) that a contact of their
-- company replying ($3 the execution replied to, $4 the company) stops or pauses, with the
-- reason company_replied. A cancelled one is finished (no next step) and its queued send goes
-- (as an opt-out's: the lease is gone with the change, so the step does not make it), so the
-- statistics do not count it in flight for ever. A paused one keeps its node, next time and
-- queued send record, as a campaign pause does: when it goes on, the sender reconciles that
-- record (the same random_id) before it repeats anything. Each is logged (company_replied).
WITH target AS (
    SELECT * FROM unnest($1::uuid[], $2::text[]) AS t (id, status)
), changed AS (
    UPDATE executions e
    SET status = t.status, error_message = 'company_replied',
        completed_at = CASE WHEN t.status = 'cancelled' THEN coalesce(e.completed_at, $5)
                            ELSE e.completed_at END,
        next_execution_at = CASE WHEN t.status = 'cancelled' THEN NULL
                                 ELSE e.next_execution_at END,
        lease_until = NULL, updated_at = $5
    FROM target t
    WHERE e.id = t.id
    RETURNING e.id, e.campaign_id, e.contact_id, e.current_node_id, t.status
), dropped AS (
    DELETE FROM messages m
    USING target t
    WHERE m.execution_id = t.id AND t.status = 'cancelled' AND m.direction = 'outgoing'
      AND m.status = 'queued'
), logged AS (
    INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                                node_type, event, status, message, details, created_at)
    SELECT x.campaign_id, x.id, x.contact_id,
           log_contact_text(c.first_name, c.last_name, c.telegram_username), x.current_node_id,
           (SELECT n ->> 'type' FROM jsonb_array_elements(cp.flow -> 'nodes') AS n
            WHERE n ->> 'id' = x.current_node_id LIMIT 1),
           'company_replied', 'ok', x.status,
           jsonb_build_object('replied_execution_id', $3::uuid, 'company_id', $4::uuid), $5
    FROM changed x
    JOIN contacts c ON c.id = x.contact_id
    JOIN campaigns cp ON cp.id = x.campaign_id
)
SELECT id FROM changed ORDER BY id;
