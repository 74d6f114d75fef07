-- name: insert_many
-- Queue records for the relay; called inside the transaction of the state change that caused them.
INSERT INTO outbox (topic, key, value, headers, message_id)
SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[], $5::uuid[]);

-- name: fetch_unsent
-- The oldest unsent records, in the order they were written, with their age (publish latency).
SELECT id, topic, key, value, headers,
       extract(epoch FROM clock_timestamp() - created_at)::float8 AS age_s
FROM outbox
WHERE sent_at IS NULL
ORDER BY id
LIMIT 1000;

-- name: mark_sent
UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[]);

-- name: count_unsent
SELECT count(*) FROM outbox WHERE sent_at IS NULL;

-- name: try_lead
-- One relay per database publishes, so records leave in the order they were written.
SELECT pg_try_advisory_lock(hashtext('dripline.outbox.relay'));

-- name: forget_sent
-- Retention: records published before $1 are Kafka's now. Oldest first, a slice at a time.
DELETE FROM outbox
WHERE id IN (SELECT id FROM outbox WHERE sent_at < $1 ORDER BY id LIMIT 10000);

-- name: forget_seen
-- Retention: message ids consumed before $1; a redelivery older than that is not expected.
DELETE FROM inbox
WHERE ctid IN (SELECT ctid FROM inbox WHERE received_at < $1 LIMIT 10000);
