-- The Telethon adapter's tables: peers resolved per account, and the updates Telegram pushed.

-- name: session
-- Everything a connect needs: the sealed session, the device the account presents and its
-- proxy (the password or MTProxy secret sealed like the session).
SELECT session_kind, session_string, device_model, system_version, app_version, lang_code,
       system_lang_code, proxy_type, proxy_host, proxy_port, proxy_username, proxy_secret
FROM telegram_accounts WHERE id = $1;

-- name: adopt_device
-- An account brought in before device identities were stored has presented Telethon's
-- defaults on every connect so far: those become its identity, so it does not change device.
-- Only when nobody holds the row: the health check connects while it locks the account, and
-- waiting for it here would wait for ourselves. The defaults are the same on the next connect,
-- which stores them.
UPDATE telegram_accounts
SET device_model = $2, system_version = $3, app_version = $4, lang_code = $5,
    system_lang_code = $6
WHERE id = (SELECT id FROM telegram_accounts WHERE id = $1 AND device_model IS NULL
            FOR NO KEY UPDATE SKIP LOCKED);

-- name: peer
SELECT peer_key, user_id, access_hash FROM telegram_peers
WHERE telegram_account_id = $1 AND contact_id = $2;

-- name: save_peer
INSERT INTO telegram_peers (telegram_account_id, contact_id, peer_key, user_id, access_hash,
                            resolved_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (telegram_account_id, contact_id) DO UPDATE
SET peer_key = EXCLUDED.peer_key, user_id = EXCLUDED.user_id,
    access_hash = EXCLUDED.access_hash, resolved_at = EXCLUDED.resolved_at;

-- name: forget_peer
-- Telegram said the access hash no longer works: resolve again on the next send.
DELETE FROM telegram_peers WHERE telegram_account_id = $1 AND contact_id = $2;

-- name: record_update
-- A reply seen twice (live, then again in the dialog's history) is kept once.
INSERT INTO telegram_updates (telegram_account_id, kind, peer_user_id, telegram_message_id,
                              body, received_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (telegram_account_id, peer_user_id, telegram_message_id) WHERE kind = 'reply'
DO NOTHING;

-- name: take_updates
-- Claimed in the caller's transaction: a crash before it commits leaves them to take again.
UPDATE telegram_updates SET applied_at = $1
WHERE id IN (SELECT id FROM telegram_updates WHERE applied_at IS NULL
             ORDER BY id LIMIT 500 FOR NO KEY UPDATE SKIP LOCKED)
RETURNING id, telegram_account_id, kind, peer_user_id, telegram_message_id, body, received_at;

-- name: answered_message
-- Our newest message to this Telegram user that a reply or read up to $3 answers. Message ids
-- of private chats are one sequence per account, so ours before the reply are smaller.
SELECT m.random_id
FROM telegram_peers p
JOIN messages m ON m.telegram_account_id = p.telegram_account_id AND m.contact_id = p.contact_id
WHERE p.telegram_account_id = $1 AND p.user_id = $2 AND m.direction = 'outgoing'
  AND m.status IN ('sent', 'delivered', 'read') AND m.telegram_message_id <= $3
ORDER BY m.telegram_message_id DESC
LIMIT 1;

-- name: send_in_flight
-- A send to this Telegram user still queued since $3: Telegram may have it already while its
-- answer (the message id, mark_sent) is not recorded yet, so a reply or read pushed meanwhile
-- may be about it. Such an update waits for the record rather than be matched to an older
-- message (or to none) and lost.
SELECT EXISTS (
    SELECT 1 FROM telegram_peers p
    JOIN messages m ON m.telegram_account_id = p.telegram_account_id
                   AND m.contact_id = p.contact_id
    WHERE p.telegram_account_id = $1 AND p.user_id = $2 AND m.direction = 'outgoing'
      AND m.status = 'queued' AND m.created_at > $3
);

-- name: put_back_update
-- Taken, but not to be applied yet: the next round takes it again.
UPDATE telegram_updates SET applied_at = NULL WHERE id = $1;

-- name: accounts_to_reconcile
SELECT id FROM telegram_accounts
WHERE session_kind = 'telethon' AND deleted_at IS NULL AND health_status IN ('active', 'warming');

-- name: dialogs_to_reconcile
-- Dialogs where we wrote since $2 and have seen no answer after our last message: a reply
-- missed while disconnected would be there.
SELECT p.user_id, p.access_hash, max(m.telegram_message_id) AS last_sent_id
FROM telegram_peers p
JOIN messages m ON m.telegram_account_id = p.telegram_account_id AND m.contact_id = p.contact_id
WHERE p.telegram_account_id = $1 AND m.direction = 'outgoing'
  AND m.status IN ('sent', 'delivered', 'read') AND m.sent_at > $2
  AND NOT EXISTS (SELECT 1 FROM messages r
                  WHERE r.execution_id = m.execution_id AND r.direction = 'incoming'
                    AND r.sent_at >= m.sent_at)
GROUP BY p.user_id, p.access_hash
ORDER BY max(m.sent_at) DESC
LIMIT 200;

-- name: hold_session
-- One process per session (two kill the key: AuthKeyDuplicated). Held on the adapter's own
-- connection, so a crashed sender releases it with its connection.
SELECT pg_try_advisory_lock(hashtextextended('dripline.telethon:' || $1::uuid::text, 0));

-- name: release_session
SELECT pg_advisory_unlock(hashtextextended('dripline.telethon:' || $1::uuid::text, 0));

-- name: orphaned_sessions
-- Sending Telethon accounts whose session no sender holds: no backend holds the advisory lock
-- of hold_session (a bigint lock shows in pg_locks as classid, the high half, and objid, the
-- low half, with objsubid 1). A disconnected account is left to its check's backoff. Random,
-- so that senders adopting at the same time take different ones.
SELECT a.id
FROM telegram_accounts a
WHERE a.deleted_at IS NULL AND a.session_kind = 'telethon'
  AND a.health_status IN ('active', 'warming', 'cooldown', 'limited', 'frozen')
  AND NOT EXISTS (
      SELECT 1 FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::int8 << 32) | l.objid::int8)
            = hashtextextended('dripline.telethon:' || a.id::text, 0))
ORDER BY random()
LIMIT $1;

-- name: want_session
-- A send here waits for a session another sender holds: a second advisory lock, on the wanting
-- sender's lock connection, that the holder sees (wanted_sessions) and answers by letting go.
SELECT pg_try_advisory_lock(hashtextextended('dripline.telethon.want:' || $1::uuid::text, 0));

-- name: unwant_session
SELECT pg_advisory_unlock(hashtextextended('dripline.telethon.want:' || $1::uuid::text, 0));

-- name: wanted_sessions
-- Of the sessions this backend holds ($1), those whose want lock another backend holds.
SELECT held.id
FROM unnest($1::uuid[]) AS held (id)
WHERE EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.pid <> pg_backend_pid()
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::int8 << 32) | l.objid::int8)
          = hashtextextended('dripline.telethon.want:' || held.id::text, 0));
