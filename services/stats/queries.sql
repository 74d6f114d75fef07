-- name: record_activity
-- One row per campaign event, newest first in the activity feed; a repeated event is ignored.
INSERT INTO campaign_activities (campaign_id, message_id, type, summary, details, occurred_at)
SELECT $1, $2, $3, $4, $5, $6
WHERE EXISTS (SELECT 1 FROM campaigns WHERE id = $1)
ON CONFLICT (message_id) DO NOTHING;

-- name: record_account_activity
-- An account's health change, in the feed of every unfinished campaign that sends from it. The
-- row's message id is derived per campaign, so a repeated event is still ignored.
INSERT INTO campaign_activities (campaign_id, message_id, type, summary, details, occurred_at)
SELECT c.id, md5($1 || c.id::text)::uuid, $2, $3, $4, $5
FROM campaigns c
WHERE c.telegram_account_id = $6 AND c.deleted_at IS NULL
  AND c.status IN ('scheduled', 'active', 'paused')
ON CONFLICT (message_id) DO NOTHING;

-- name: lock_campaigns
SELECT statistics_lock($1::uuid[]);

-- name: refresh
-- $1 executions to recount, $2 campaigns to recount whole, $3/$4 each named campaign with its
-- event's time, $5 now (see refresh_statistics in the schema).
SELECT refresh_statistics($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5);

-- name: record_progress
-- Per topic: the newest event applied, and how old the oldest event of the batch was when its
-- figures were refreshed. The API shows it as the statistics' lag.
INSERT INTO stats_progress (topic, last_occurred_at, applied_at, lag_seconds)
VALUES ($1, $2, $3, $4)
ON CONFLICT (topic) DO UPDATE
SET last_occurred_at = greatest(stats_progress.last_occurred_at, excluded.last_occurred_at),
    applied_at = excluded.applied_at,
    lag_seconds = excluded.lag_seconds
WHERE stats_progress.applied_at <= excluded.applied_at;

-- name: bulk_action_executions
-- The executions one batch of a bulk action changed: its contacts' executions in the campaign it
-- adds to, in its one-message campaign, or in the campaigns its contacts left or rejoined.
WITH batch AS (
    SELECT i.contact_id, i.details
    FROM bulk_action_items i
    WHERE i.bulk_action_id = $1 AND i.batch_number = $2
), campaigns_ AS (
    SELECT (a.params ->> 'campaign_id')::uuid AS id
    FROM bulk_actions a
    WHERE a.id = $1 AND a.action = 'add_to_campaign'
    UNION
    SELECT c.id FROM campaigns c WHERE c.bulk_action_id = $1
    UNION
    SELECT (jsonb_array_elements_text(b.details -> 'campaigns'))::uuid
    FROM batch b
    WHERE b.details ? 'campaigns'
)
SELECT e.campaign_id, e.id AS execution_id
FROM batch b
JOIN executions e ON e.contact_id = b.contact_id
WHERE e.campaign_id IN (SELECT id FROM campaigns_);

-- name: materialized_figures
-- The stored figures ($1: these campaigns, or all when NULL).
SELECT * FROM stored_campaign_statistics(coalesce($1::uuid[], ARRAY(SELECT id FROM campaigns)));

-- name: recounted_figures
-- The same campaigns counted now from the source tables.
SELECT * FROM campaign_statistics(coalesce($1::uuid[], ARRAY(SELECT id FROM campaigns)));

-- name: rebuild
-- Replace the stored figures of campaigns $1 by a recount from the source tables: every
-- execution's share, the totals and the variants ($2: now). The caller holds statistics_lock()
-- on them, so no refresh interleaves, and a later refresh adds its differences to these
-- figures. One statement, one snapshot: returns each campaign's stored figures as they were
-- (recounted false) and the recount that replaced them (recounted true).
WITH fresh AS MATERIALIZED (
    SELECT ARRAY(SELECT c FROM execution_contributions('{}', $1::uuid[]) c) AS shares
), sums AS MATERIALIZED (
    SELECT f.* FROM fresh, figure_sums(fresh.shares, '{}') f
), shares AS (
    INSERT INTO execution_figures
    SELECT c.* FROM fresh, unnest(fresh.shares) c
    ON CONFLICT (execution_id) DO UPDATE
    SET variant = excluded.variant, status = excluded.status, started = excluded.started,
        responded = excluded.responded, sent = excluded.sent, failed = excluded.failed,
        delivered = excluded.delivered, not_sent = excluded.not_sent
    WHERE (execution_figures.variant, execution_figures.status, execution_figures.started,
           execution_figures.responded, execution_figures.sent, execution_figures.failed,
           execution_figures.delivered, execution_figures.not_sent)
          IS DISTINCT FROM (excluded.variant, excluded.status, excluded.started,
                            excluded.responded, excluded.sent, excluded.failed,
                            excluded.delivered, excluded.not_sent)
    RETURNING 1
), orphans AS (
    DELETE FROM execution_figures f
    WHERE f.campaign_id = ANY($1::uuid[])
      AND f.execution_id NOT IN (SELECT (c).execution_id FROM fresh, unnest(fresh.shares) c)
    RETURNING 1
), totals AS (
    INSERT INTO campaign_stats AS s
    SELECT c.id,
           coalesce(t.total_contacts, 0), coalesce(t.contacts_started, 0),
           coalesce(t.contacts_completed, 0), coalesce(t.contacts_failed, 0),
           coalesce(t.contacts_active, 0), coalesce(t.contacts_responded, 0),
           coalesce(t.messages_sent, 0), coalesce(t.messages_failed, 0),
           coalesce(t.messages_delivered, 0), coalesce(t.messages_not_sent, 0),
           coalesce(t.executions_pending, 0), coalesce(t.executions_running, 0),
           coalesce(t.executions_waiting, 0), coalesce(t.executions_paused, 0),
           coalesce(t.executions_cancelled, 0),
           $2::timestamptz, NULL, 1
    FROM campaigns c
    LEFT JOIN sums t ON t.campaign_id = c.id AND NOT t.per_variant
    WHERE c.id = ANY($1::uuid[])
    ON CONFLICT (campaign_id) DO UPDATE
    SET total_contacts = excluded.total_contacts,
        contacts_started = excluded.contacts_started,
        contacts_completed = excluded.contacts_completed,
        contacts_failed = excluded.contacts_failed,
        contacts_active = excluded.contacts_active,
        contacts_responded = excluded.contacts_responded,
        messages_sent = excluded.messages_sent,
        messages_failed = excluded.messages_failed,
        messages_delivered = excluded.messages_delivered,
        messages_not_sent = excluded.messages_not_sent,
        executions_pending = excluded.executions_pending,
        executions_running = excluded.executions_running,
        executions_waiting = excluded.executions_waiting,
        executions_paused = excluded.executions_paused,
        executions_cancelled = excluded.executions_cancelled,
        as_of = excluded.as_of,
        refreshes = s.refreshes + 1
    RETURNING 1
), stale_variants AS (
    DELETE FROM campaign_variant_stats v
    WHERE v.campaign_id = ANY($1::uuid[])
      AND NOT EXISTS (SELECT 1 FROM sums t
                      WHERE t.per_variant AND t.campaign_id = v.campaign_id
                        AND t.variant = v.variant)
    RETURNING 1
), variants AS (
    INSERT INTO campaign_variant_stats AS v
    SELECT t.campaign_id, t.variant, t.total_contacts, t.contacts_completed,
           t.contacts_responded, t.messages_sent, t.messages_delivered, t.messages_failed
    FROM sums t
    WHERE t.per_variant
    ON CONFLICT (campaign_id, variant) DO UPDATE
    SET contacts = excluded.contacts,
        contacts_completed = excluded.contacts_completed,
        contacts_responded = excluded.contacts_responded,
        messages_sent = excluded.messages_sent,
        messages_delivered = excluded.messages_delivered,
        messages_failed = excluded.messages_failed
    RETURNING 1
)
SELECT b.*, false AS recounted FROM stored_campaign_statistics($1::uuid[]) b
UNION ALL
SELECT r.*, true FROM campaign_statistics($1::uuid[]) r;

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
