-- Send reservations and pacing: the accounts a batch's sends go out from (locked), the peers
-- they already know, the send records written before, and the records and pace reserved now.

-- name: lock_accounts
-- The batch's accounts, locked in id order: each account's sends are paced one after another.
-- fleet_paused: why the fleet breaker paused the sending of the account's context (its
-- organization, or its owner in personal mode), NULL when it is not; read, not locked (the
-- scheduler writes it, taking no account lock).
SELECT a.id, a.session_kind, a.simulation, a.pacing, a.health_status, a.cooldown_until,
       a.last_send_at, a.daily_quota, a.sent_today, a.quota_day, a.flood_on, a.created_at,
       a.deleted_at,
       (SELECT b.reason FROM fleet_breakers b
        WHERE b.tripped_at IS NOT NULL
          AND CASE WHEN a.organization_id IS NOT NULL THEN b.organization_id = a.organization_id
                   ELSE b.user_id = a.owner_user_id END) AS fleet_paused
FROM telegram_accounts a
WHERE a.id = ANY($1::uuid[])
ORDER BY a.id
FOR UPDATE;

-- name: known_peers
-- Of these (account, contact) pairs, the ones that are known. Every outgoing message
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
-- The send records of the sends reserved now (one per execution, node and count of sends).
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
-- Each account's pace ($1): $4 new peers each, all sends counting from $2.
UPDATE telegram_accounts a
SET last_send_at = $2,
    sent_today = CASE WHEN a.quota_day = $3 THEN a.sent_today ELSE 0 END + r.new_peers,
    quota_day = $3
FROM unnest($1::uuid[], $4::int[]) AS r (id, new_peers)
WHERE a.id = r.id;
