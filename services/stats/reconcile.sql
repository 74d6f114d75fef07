-- name: reconcile_window
-- Where the last reconciliation stopped reading the outbox ($1: settle seconds, $2: the
-- outbox's retention): `since` (NULL: never), `until` (the newest record old enough that its
-- event should have been applied by now), and `whole` when the records in between may be gone
-- (never reconciled, or not within the retention), so every campaign is compared.
SELECT r.outbox_id AS since,
       coalesce((SELECT o.id FROM outbox o
                 WHERE o.created_at <= now() - make_interval(secs => $1)
                 ORDER BY o.id DESC LIMIT 1), r.outbox_id, 0) AS until,
       r.outbox_id IS NULL OR r.reconciled_at < now() - make_interval(secs => $2) AS whole
FROM (SELECT) AS one
LEFT JOIN stats_reconciliation r ON true;

-- name: changed_campaigns
-- The campaigns outbox records $1 < id <= $2 named: campaign and execution events are keyed by
-- their campaign; a bulk action's batch names its contacts' campaigns (as bulk_action_executions).
WITH records AS (
    SELECT o.topic, o.key, o.value
    FROM outbox o
    WHERE o.id > $1 AND o.id <= $2
      AND o.topic IN ('dripline.campaign.events', 'dripline.execution.events',
                      'dripline.bulk.events')
), keyed AS (
    SELECT DISTINCT convert_from(r.key, 'UTF8') AS id
    FROM records r
    WHERE r.topic <> 'dripline.bulk.events' AND r.key IS NOT NULL
), batches AS (
    SELECT DISTINCT (j.v -> 'payload' ->> 'action_id')::uuid AS action_id,
                    (j.v -> 'payload' ->> 'batch')::integer AS batch
    FROM records r
    CROSS JOIN LATERAL (SELECT convert_from(r.value, 'UTF8')::jsonb AS v) j
    WHERE r.topic = 'dripline.bulk.events' AND j.v ->> 'type' LIKE 'bulk_action.%'
), named AS (
    SELECT c.id FROM campaigns c JOIN keyed k ON c.id::text = k.id
    UNION
    SELECT (a.params ->> 'campaign_id')::uuid
    FROM bulk_actions a JOIN batches b ON a.id = b.action_id
    WHERE a.action = 'add_to_campaign'
    UNION
    SELECT c.id FROM campaigns c JOIN batches b ON c.bulk_action_id = b.action_id
    UNION
    SELECT (jsonb_array_elements_text(i.details -> 'campaigns'))::uuid
    FROM bulk_action_items i
    JOIN batches b ON i.bulk_action_id = b.action_id AND i.batch_number = b.batch
    WHERE i.details ? 'campaigns'
)
SELECT n.id FROM named n JOIN campaigns c ON c.id = n.id ORDER BY n.id;

-- name: every_campaign
SELECT id FROM campaigns ORDER BY id;

-- name: record_reconciliation
INSERT INTO stats_reconciliation (singleton, outbox_id, reconciled_at)
VALUES (true, $1, now())
ON CONFLICT (singleton) DO UPDATE
SET outbox_id = greatest(stats_reconciliation.outbox_id, excluded.outbox_id),
    reconciled_at = excluded.reconciled_at;
