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
