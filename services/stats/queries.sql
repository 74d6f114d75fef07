-- name: record_activity
-- One row per campaign event, newest first in the activity feed; a repeated event is ignored.
INSERT INTO campaign_activities (campaign_id, message_id, type, summary, details, occurred_at)
SELECT $1, $2, $3, $4, $5, $6
WHERE EXISTS (SELECT 1 FROM campaigns WHERE id = $1)
ON CONFLICT (message_id) DO NOTHING;

-- name: count_launch
INSERT INTO campaign_stats (campaign_id, launches, last_event_at, updated_at)
SELECT $1, 1, $2, now()
WHERE EXISTS (SELECT 1 FROM campaigns WHERE id = $1)
ON CONFLICT (campaign_id) DO UPDATE
SET launches = campaign_stats.launches + 1,
    last_event_at = greatest(campaign_stats.last_event_at, excluded.last_event_at),
    updated_at = now();
