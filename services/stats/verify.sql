-- name: materialized_figures
-- The stored figures ($1: these campaigns, or all when NULL).
SELECT * FROM stored_campaign_statistics(coalesce($1::uuid[], ARRAY(SELECT id FROM campaigns)));

-- name: recounted_figures
-- The same campaigns counted now from the source tables.
SELECT * FROM campaign_statistics(coalesce($1::uuid[], ARRAY(SELECT id FROM campaigns)));

-- name: lock_campaigns
-- The same advisory locks refresh.py takes, so a rebuild and a refresh never interleave.
SELECT statistics_lock($1::uuid[]);

-- name: forget_figures
-- Drop the stored figures of campaigns $1 (shares, variants, totals) so `recount` counts them
-- afresh; returns each dropped total's newest event time, which the recount keeps.
WITH shares AS (
    DELETE FROM execution_figures WHERE campaign_id = ANY($1::uuid[])
), variants AS (
    DELETE FROM campaign_variant_stats WHERE campaign_id = ANY($1::uuid[])
)
DELETE FROM campaign_stats WHERE campaign_id = ANY($1::uuid[])
RETURNING campaign_id, last_event_at;

-- name: recount
-- The event-driven refresh itself: campaigns $1 (with their last event times $2) have no stored
-- row now, so refresh_statistics recounts each whole and stores the result ($3: now).
SELECT refresh_statistics('{}', '{}', $1::uuid[], $2::timestamptz[], $3);
