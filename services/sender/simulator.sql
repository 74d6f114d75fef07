-- The simulated Telegram's memory (table simulator_messages). Only the simulator uses these.

-- name: find
SELECT message_id, sent_at FROM simulator_messages WHERE account_id = $1 AND random_id = $2;

-- name: counts
-- What the simulated server knows of the account's sending: in total, within the burst window
-- ($2 = its start), distinct peers since $3 (the day's start), and whether $4 is a known peer.
SELECT count(*) AS total,
       count(*) FILTER (WHERE sent_at >= $2) AS recent,
       count(DISTINCT peer) FILTER (WHERE sent_at >= $3) AS peers_today,
       bool_or(peer = $4) AS known_peer
FROM simulator_messages
WHERE account_id = $1;

-- name: record
-- A message that will never be read or answered has nothing to report.
INSERT INTO simulator_messages (account_id, random_id, peer, body, sent_at, read_at, reply_at,
                                read_reported, reply_reported, attachment_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $6::timestamptz IS NULL, $7::timestamptz IS NULL, $8)
RETURNING message_id;

-- name: due_updates
-- Reads and replies whose time has come, marked reported in the caller's transaction, with the
-- account's simulation (a contact's reply_text).
WITH due AS (
    SELECT account_id, random_id,
           (read_at IS NOT NULL AND read_at <= $1 AND NOT read_reported) AS read_due,
           (reply_at IS NOT NULL AND reply_at <= $1 AND NOT reply_reported) AS reply_due
    FROM simulator_messages
    WHERE NOT (read_reported AND reply_reported)
      AND ((read_at IS NOT NULL AND read_at <= $1 AND NOT read_reported)
           OR (reply_at IS NOT NULL AND reply_at <= $1 AND NOT reply_reported))
    ORDER BY sent_at
    LIMIT 1000
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE simulator_messages s
SET read_reported = s.read_reported OR due.read_due,
    reply_reported = s.reply_reported OR due.reply_due
FROM due
WHERE s.account_id = due.account_id AND s.random_id = due.random_id
RETURNING s.account_id, s.random_id, due.read_due, due.reply_due, s.read_at, s.reply_at, s.peer,
          (SELECT a.simulation FROM telegram_accounts a WHERE a.id = s.account_id) AS simulation;

-- name: total
SELECT count(*) FROM simulator_messages WHERE account_id = $1;

-- name: record_many
-- `record` for many sends of one moment ($5); a random_id it already holds is left alone (not
-- returned: the caller looks it up with find_many and answers it as a duplicate).
INSERT INTO simulator_messages (account_id, random_id, peer, body, sent_at, read_at, reply_at,
                                read_reported, reply_reported, attachment_id)
SELECT account_id, random_id, peer, body, $5, read_at, reply_at, read_at IS NULL,
       reply_at IS NULL, attachment_id
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $6::timestamptz[],
            $7::timestamptz[], $8::uuid[])
     AS i (account_id, random_id, peer, body, read_at, reply_at, attachment_id)
ON CONFLICT (account_id, random_id) DO NOTHING
RETURNING account_id, random_id, message_id;

-- name: find_many
SELECT s.account_id, s.random_id, s.message_id, s.sent_at
FROM simulator_messages s
JOIN unnest($1::uuid[], $2::bigint[]) AS i (account_id, random_id)
  ON s.account_id = i.account_id AND s.random_id = i.random_id;
