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
-- Serializes refreshes of one campaign across stats instances (campaign and execution events
-- may be consumed by different ones): the later refresh waits, then counts a newer snapshot, so
-- an older count can never overwrite a newer one. In id order, so two batches cannot deadlock.
SELECT pg_advisory_xact_lock(hashtext('campaign_stats'), hashtext(id::text))
FROM unnest($1::uuid[]) AS id
ORDER BY id;

-- name: refresh
-- Recount the touched campaigns and store their figures. $2 and $3 pair each campaign with the
-- newest event that touched it; $4 is when the count was taken.
INSERT INTO campaign_stats
SELECT s.*, $4::timestamptz, t.last_event_at, 1
FROM campaign_statistics($1::uuid[]) s
JOIN unnest($2::uuid[], $3::timestamptz[]) AS t (campaign_id, last_event_at)
  ON t.campaign_id = s.campaign_id
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
    completion_rate = excluded.completion_rate,
    response_rate = excluded.response_rate,
    delivery_rate = excluded.delivery_rate,
    variants = excluded.variants,
    by_status = excluded.by_status,
    as_of = excluded.as_of,
    last_event_at = greatest(campaign_stats.last_event_at, excluded.last_event_at),
    refreshes = campaign_stats.refreshes + 1;

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

-- name: bulk_action_campaigns
-- The campaigns whose contacts one batch of a bulk action changed: the campaign it adds to, the
-- one-message campaign it sends through, or the campaigns its contacts left or rejoined.
SELECT (a.params ->> 'campaign_id')::uuid AS campaign_id
FROM bulk_actions a
WHERE a.id = $1 AND a.action = 'add_to_campaign'
UNION
SELECT c.id FROM campaigns c WHERE c.bulk_action_id = $1
UNION
SELECT DISTINCT (jsonb_array_elements_text(i.details -> 'campaigns'))::uuid
FROM bulk_action_items i
WHERE i.bulk_action_id = $1 AND i.batch_number = $2 AND i.details ? 'campaigns';

-- name: materialized_figures
-- Every campaign's stored figures ($1: these campaigns, or all when NULL).
SELECT * FROM campaign_stats WHERE $1::uuid[] IS NULL OR campaign_id = ANY($1::uuid[]);

-- name: recounted_figures
-- The same campaigns counted now from the source tables.
SELECT * FROM campaign_statistics(coalesce($1::uuid[], ARRAY(SELECT id FROM campaigns)));
