-- name: claim
-- Record the message ids this consumer is about to apply; returns only the ones it has not
-- applied before. Runs in the same transaction as the effects, so a rollback forgets them.
INSERT INTO inbox (consumer, message_id, topic)
SELECT $1, id, $2 FROM unnest($3::uuid[]) AS id
ON CONFLICT (consumer, message_id) DO NOTHING
RETURNING message_id;
