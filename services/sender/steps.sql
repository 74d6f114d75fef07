-- A step's writes: execution progress, send records, execution logs, and the contact tags a tag node sets (see docs/architecture.md).

-- name: mark_failed
UPDATE messages SET status = 'failed', error_code = $2, error_message = $3 WHERE id = $1;

-- name: drop_send_record
-- Telegram refused before accepting (flood wait, limits, dead account): nothing was sent.
DELETE FROM messages WHERE id = $1 AND status = 'queued';

-- name: record_flood
-- A flood error today: the rest of today's budget of new peers is cut.
UPDATE telegram_accounts SET flood_on = $2 WHERE id = $1;

-- name: drop_send_records
-- drop_send_record for many: the queued records of sends that will not be made (their contact
-- was deleted), so the statistics do not count them in flight for ever.
DELETE FROM messages WHERE id = ANY($1::uuid[]) AND status = 'queued';

-- name: skip_executions
-- Sends not made (reach.refusal): each execution is cancelled or waits, with the reason, and
-- stays where it stood. started_at is left alone: a step that sent nothing started nothing.
UPDATE executions e
SET status = s.status, next_execution_at = s.next_at, completed_at = s.completed_at,
    error_message = s.reason, lease_until = NULL, updated_at = s.now
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[],
            $6::timestamptz[])
     AS s (id, status, next_at, completed_at, reason, now)
WHERE e.id = s.id;

-- name: defer_execution
-- Not now (pacing, a cooldown, a transient failure): due again at $2, nothing else changes.
UPDATE executions SET next_execution_at = $2, lease_until = NULL, attempts = attempts + $3,
                      updated_at = $4
WHERE id = $1;

-- name: set_contact_tags
UPDATE contacts SET tags = $2, updated_at = $3 WHERE id = $1;

-- name: lock_due_executions
-- lock_execution for many, locked in id order ($1 the executions, $2 the leases their events
-- carry): an execution whose lease is not its event's (a stale event: its claim ran out and it
-- was claimed again) is neither returned nor locked; a null lease always matches. The flow and
-- settings come as text: they are the same for a campaign's executions, so they are decoded
-- (and checked) once per campaign.
SELECT e.id, e.campaign_id, e.contact_id, e.status, e.current_node_id, e.next_execution_at,
       e.lease_until, e.variant, e.context, e.started_at,
       c.flow::text AS flow_json, c.settings::text AS settings_json, c.timezone,
       c.status AS campaign_status, c.enabled AS campaign_enabled,
       c.deleted_at AS campaign_deleted_at, c.telegram_account_id AS account_id,
       ct.telegram_username, ct.phone, ct.telegram_user_id, ct.tags AS contact_tags,
       ct.custom_fields, ct.first_name, ct.last_name, ct.deleted_at AS contact_deleted_at,
       do_not_contact_listed(ct.organization_id, ct.owner_user_id, ct.id, ct.telegram_user_id,
                             ct.telegram_username, ct.phone) AS do_not_contact
FROM executions e
JOIN campaigns c ON c.id = e.campaign_id
JOIN contacts ct ON ct.id = e.contact_id
WHERE e.id = ANY($1::uuid[])
  AND EXISTS (SELECT 1 FROM unnest($1::uuid[], $2::timestamptz[]) AS d (id, lease_until)
              WHERE d.id = e.id AND (d.lease_until IS NULL OR d.lease_until = e.lease_until))
ORDER BY e.id
FOR UPDATE OF e;

-- name: lock_accounts
-- lock_account for many, locked in id order.
SELECT id, session_kind, simulation, pacing, health_status, cooldown_until, last_send_at,
       daily_quota, sent_today, quota_day, flood_on, created_at, deleted_at
FROM telegram_accounts
WHERE id = ANY($1::uuid[])
ORDER BY id
FOR UPDATE;

-- name: known_peers
-- known_peer for many (account, contact) pairs: the pairs that are known. Every outgoing message
-- is a send record of an execution of the same contact, so the messages are reached through the
-- contact's executions (indexed); LATERAL … LIMIT 1 keeps it to a few index probes per pair
-- (a semi-join is misestimated into a scan of every message).
SELECT p.account_id, p.contact_id
FROM unnest($1::uuid[], $2::uuid[]) AS p (account_id, contact_id)
CROSS JOIN LATERAL (
    SELECT 1 FROM executions e
    JOIN messages m ON m.execution_id = e.id
    WHERE e.contact_id = p.contact_id AND m.contact_id = p.contact_id
      AND m.telegram_account_id = p.account_id AND m.direction = 'outgoing'
      AND m.status IN ('sent', 'delivered', 'read')
    LIMIT 1) AS known;

-- name: send_records
SELECT id, status, random_id, body, node_id, send_key FROM messages WHERE send_key = ANY($1::text[]);

-- name: claim_sends
-- claim_send for many.
INSERT INTO messages (campaign_id, execution_id, contact_id, telegram_account_id, node_id,
                      variant, direction, body, status, send_key, random_id)
SELECT campaign_id, execution_id, contact_id, account_id, node_id, variant, 'outgoing', body,
       'queued', send_key, random_id
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::bigint[])
     AS s (campaign_id, execution_id, contact_id, account_id, node_id, variant, body, send_key,
           random_id)
ON CONFLICT (send_key) DO NOTHING
RETURNING id, status, random_id, body, node_id, send_key;

-- name: reserve_sends
-- reserve_send for many accounts: $4 new peers each, all sends counting from $2.
UPDATE telegram_accounts a
SET last_send_at = $2,
    sent_today = CASE WHEN a.quota_day = $3 THEN a.sent_today ELSE 0 END + r.new_peers,
    quota_day = $3
FROM unnest($1::uuid[], $4::int[]) AS r (id, new_peers)
WHERE a.id = r.id;

-- name: mark_sent_many
-- mark_sent for many: each message leaves 'queued' once, so it is logged as sent once. Returns
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
)
SELECT id, campaign_id, execution_id, contact_id, telegram_account_id, node_id, variant,
       send_key
FROM sent;

-- name: lock_send_record
-- The send record an answer belongs to, locked (after its execution) while the answer is
-- applied.
SELECT id, status, node_id, send_key FROM messages WHERE id = $1 FOR UPDATE;

-- name: save_executions
-- save_execution for many (each execution once).
UPDATE executions e
SET status = s.status, current_node_id = s.node_id, next_execution_at = s.next_at,
    lease_until = s.lease_until, context = jsonb_set(e.context, '{flow}', s.flow::jsonb),
    variant = s.variant, started_at = coalesce(e.started_at, s.now),
    completed_at = s.completed_at, error_message = s.error, updated_at = s.now
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
            $7::timestamptz[], $8::timestamptz[], $9::text[], $10::timestamptz[])
     AS s (id, status, node_id, next_at, flow, variant, now, completed_at, error, lease_until)
WHERE e.id = s.id;

-- name: write_logs_many
-- A subquery rather than a join for the contact, so rows keep the order of the walk (ids are
-- given in insertion order, and the log reads in id order within one moment).
INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                            node_type, event, status, message, details, created_at)
SELECT l.campaign_id, l.execution_id, l.contact_id,
       (SELECT log_contact_text(c.first_name, c.last_name, c.telegram_username)
        FROM contacts c WHERE c.id = l.contact_id),
       l.node_id, l.node_type, l.event, l.status, l.message, '{}'::jsonb, l.created_at
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::timestamptz[])
     AS l (campaign_id, execution_id, contact_id, node_id, node_type, event, status, message,
           created_at);
