-- name: materialized
-- The stats service's row for one campaign, with how far behind the events it runs: the worst
-- lag of its latest batch on any topic.
SELECT s.*, (SELECT max(lag_seconds) FROM stats_progress) AS lag_seconds
FROM campaign_stats s
WHERE s.campaign_id = $1;

-- name: recount
-- The same figures counted now from the source tables (the spec's database function).
SELECT s.*, now() AS as_of, NULL::timestamptz AS last_event_at
FROM get_campaign_statistics($1) s;

-- name: compared
-- The campaigns to compare as the caller may see them, with their materialized figures (NULL
-- where the stats service has not counted a campaign yet). One-message campaigns of bulk
-- actions are not campaigns to the caller.
SELECT c.id, c.name, c.status, c.enabled, c.created_by, c.organization_id, c.deleted_at,
       s.total_contacts, s.contacts_started, s.contacts_completed, s.contacts_failed,
       s.contacts_active, s.contacts_responded, s.messages_sent, s.messages_failed,
       s.messages_delivered, s.messages_not_sent, s.completion_rate, s.response_rate,
       s.delivery_rate, s.variants, s.by_status, s.as_of
FROM campaigns c
LEFT JOIN campaign_stats s ON s.campaign_id = c.id
WHERE c.id = ANY($1::uuid[]) AND c.bulk_action_id IS NULL;

-- name: recount_many
SELECT s.*, now() AS as_of FROM campaign_statistics($1::uuid[]) s;

-- name: lag
SELECT max(lag_seconds) FROM stats_progress;
