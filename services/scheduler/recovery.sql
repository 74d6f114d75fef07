-- name: lost_commands
-- Command records on topic $5 after $2 (by outbox id, $3 at most) that the relay marked sent
-- more than $4 seconds ago, each with whether consumer $1 has applied its message. The topic
-- list is outbox_commands_idx's predicate, written out so that every plan may walk that index;
-- the caller stops at the first record still unsent or too recent.
SELECT o.id, o.topic, o.key, o.value, o.headers,
       o.sent_at IS NOT NULL AND o.sent_at < now() - make_interval(secs => $4) AS due,
       EXISTS (SELECT 1 FROM inbox i WHERE i.consumer = $1 AND i.message_id = o.message_id)
           AS consumed
FROM outbox o
WHERE o.topic IN ('dripline.campaign.commands', 'dripline.bulk.commands')
  AND o.topic = $5 AND o.id > $2
ORDER BY o.id
LIMIT $3;
