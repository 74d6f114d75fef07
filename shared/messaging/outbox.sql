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
-- Fenced: marks only while the relay row still carries the caller's epoch ($4); the share lock
-- makes a takeover wait for this statement, so the new leader reads what it wrote. Records
-- where the broker acknowledged them ($2, $3), and per partition the first offset of the last
-- batch acknowledged ($5, $6, $7). Returns 1 when marked, 0 when another relay has taken over.
WITH fence AS (
    SELECT epoch FROM outbox_relay WHERE epoch = $4 FOR SHARE
), marked AS (
    UPDATE outbox o
    SET sent_at = now(), kafka_partition = a.kafka_partition, kafka_offset = a.kafka_offset
    FROM unnest($1::bigint[], $2::integer[], $3::bigint[]) AS a(id, kafka_partition, kafka_offset),
         fence
    WHERE o.id = a.id
), acked AS (
    INSERT INTO outbox_acked (topic, kafka_partition, last_batch)
    SELECT e.topic, e.kafka_partition, e.last_batch
    FROM unnest($5::text[], $6::integer[], $7::bigint[]) AS e(topic, kafka_partition, last_batch),
         fence
    ON CONFLICT (topic, kafka_partition) DO UPDATE SET last_batch = excluded.last_batch
)
SELECT count(*)::int FROM fence;

-- name: republish_from
-- A broker lost the records it had acknowledged at or after these offsets ($1 topics, $2
-- partitions, $3 offsets): they become unsent again, so the relay publishes them again in id
-- order, and the partition's last batch goes back with the broker (to before the new end). Fenced like
-- mark_sent; returns the records made unsent (NULL when fenced).
WITH fence AS (
    SELECT epoch FROM outbox_relay WHERE epoch = $4 FOR SHARE
), lost AS (
    SELECT topic, kafka_partition, from_offset
    FROM unnest($1::text[], $2::integer[], $3::bigint[]) AS l(topic, kafka_partition, from_offset)
), reset AS (
    UPDATE outbox o SET sent_at = NULL, kafka_partition = NULL, kafka_offset = NULL
    FROM lost, fence
    WHERE o.sent_at IS NOT NULL AND o.topic = lost.topic
      AND o.kafka_partition = lost.kafka_partition AND o.kafka_offset >= lost.from_offset
    RETURNING 1
), moved AS (
    UPDATE outbox_acked a SET last_batch = lost.from_offset - 1
    FROM lost, fence
    WHERE a.topic = lost.topic AND a.kafka_partition = lost.kafka_partition
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM fence) THEN (SELECT count(*)::int FROM reset) END;

-- name: republish_all
-- The broker is another cluster ($1 its id): every record still kept was acknowledged by the
-- old one, so all become unsent again. Fenced; returns the records made unsent (NULL when
-- fenced).
WITH fence AS (
    SELECT epoch FROM outbox_relay WHERE epoch = $2 FOR SHARE
), reset AS (
    UPDATE outbox SET sent_at = NULL, kafka_partition = NULL, kafka_offset = NULL
    FROM fence
    WHERE sent_at IS NOT NULL
    RETURNING 1
), forgot AS (
    DELETE FROM outbox_acked USING fence
), noted AS (
    UPDATE outbox_relay r SET cluster_id = $1 FROM fence WHERE r.epoch = fence.epoch
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM fence) THEN (SELECT count(*)::int FROM reset) END;

-- name: note_cluster
-- The first cluster id the relay sees is the one its acknowledged offsets belong to.
UPDATE outbox_relay SET cluster_id = $1 WHERE epoch = $2 AND cluster_id IS NULL;

-- name: last_batches
SELECT topic, kafka_partition, last_batch FROM outbox_acked;

-- name: count_unsent
SELECT count(*) FROM outbox WHERE sent_at IS NULL;

-- name: claim_lead
-- One relay per database publishes, so records leave in the order they were written. The lease
-- is free when it has run out (the holder stopped renewing: paused or cut off), was released,
-- or its holder's backend is gone (the process died). Taking it increments the epoch, which
-- fences the previous holder out. $1 holder, $2 lease in seconds. Returns the new epoch, the
-- previous holder's backend (to terminate) and the cluster id the acknowledgements belong to;
-- no row when the lease is held. SKIP LOCKED: a leader marking records holds the row, so it
-- is alive.
WITH previous AS (
    SELECT singleton, backend_pid, backend_started FROM outbox_relay r
    WHERE r.lease_until < now() OR r.backend_pid IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend_pid)
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE outbox_relay r
SET epoch = r.epoch + 1, holder = $1, backend_pid = pg_backend_pid(),
    backend_started = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
    renewed_at = now(), lease_until = now() + make_interval(secs => $2)
FROM previous
WHERE r.singleton = previous.singleton
RETURNING r.epoch, previous.backend_pid, previous.backend_started, r.cluster_id;

-- name: renew_lead
-- $1 epoch, $2 lease in seconds; no row when another relay has taken over.
UPDATE outbox_relay
SET renewed_at = now(), lease_until = now() + make_interval(secs => $2)
WHERE epoch = $1
RETURNING epoch;

-- name: release_lead
UPDATE outbox_relay SET lease_until = '-infinity', backend_pid = NULL, backend_started = NULL
WHERE epoch = $1;

-- name: terminate_backend
-- The previous leader's connection (the same backend, not a later one with its pid): a paused
-- leader that resumes finds it closed, and its transaction, if any, is rolled back.
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE pid = $1 AND backend_start = $2 AND pid <> pg_backend_pid();

-- name: forget_sent
-- Retention: records published before $1 are Kafka's now. Oldest first, a slice at a time.
DELETE FROM outbox
WHERE id IN (SELECT id FROM outbox WHERE sent_at < $1 ORDER BY id LIMIT 10000);

-- name: forget_seen
-- Retention: message ids consumed before $1; a redelivery older than that is not expected.
DELETE FROM inbox
WHERE ctid IN (SELECT ctid FROM inbox WHERE received_at < $1 LIMIT 10000);
