-- name: materialized
-- The figures the stats service stored for one campaign, with how far behind the events it
-- runs: the worst lag of its latest batch on any topic.
SELECT f.*, s.as_of, (SELECT max(lag_seconds) FROM stats_progress) AS lag_seconds
FROM stored_campaign_statistics(ARRAY[$1::uuid]) f
JOIN campaign_stats s ON s.campaign_id = f.campaign_id;

-- name: recount
-- The same figures counted now from the source tables.
SELECT s.*, now() AS as_of FROM campaign_statistics(ARRAY[$1::uuid]) s;

-- name: compared
-- The campaigns to compare, with their owners for the permission check. One-message campaigns
-- of bulk actions are not campaigns to the caller.
SELECT c.id, c.name, c.status, c.enabled, c.created_by, c.organization_id, c.deleted_at
FROM campaigns c
WHERE c.id = ANY($1::uuid[]) AND c.bulk_action_id IS NULL;

-- name: stored_many
SELECT f.*, s.as_of
FROM stored_campaign_statistics($1::uuid[]) f
JOIN campaign_stats s ON s.campaign_id = f.campaign_id;

-- name: recount_many
SELECT s.*, now() AS as_of FROM campaign_statistics($1::uuid[]) s;

-- name: lag
SELECT max(lag_seconds) FROM stats_progress;
