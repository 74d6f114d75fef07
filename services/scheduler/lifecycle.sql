-- name: duplicate_campaign
-- Spec 001: the copy is a draft with the flow and settings, and no contacts. $3 duplicates it.
INSERT INTO campaigns (id, organization_id, created_by, name, description, telegram_account_id,
                       timezone, launch_type, scheduled_at, recurrence, flow, settings, tags,
                       created_at, updated_at)
SELECT $2, organization_id, $3, $4, description, telegram_account_id, timezone, launch_type,
       scheduled_at, recurrence, flow, settings, tags, $5, $5
FROM campaigns
WHERE id = $1
ON CONFLICT (id) DO NOTHING;

-- name: unfinished_contacts
-- Run again as a copy (issue 16): the campaign's contacts whose executions never finished
-- (stopped or disabled before the end: neither completed nor failed); removed ones are left out.
SELECT contact_id FROM executions
WHERE campaign_id = $1 AND deleted_at IS NULL AND status NOT IN ('completed', 'failed')
ORDER BY contact_id;

-- name: remove_contacts
-- Spec 001: the executions are soft-deleted (their progress is lost, their history kept).
WITH removed AS (
    UPDATE executions
    SET deleted_at = $3,
        status = CASE WHEN status IN {{EXECUTIONS_UNFINISHED}}
                      THEN 'cancelled' ELSE status END,
        completed_at = coalesce(completed_at, $3),
        error_message = CASE WHEN status IN {{EXECUTIONS_UNFINISHED}}
                             THEN 'Contact removed from campaign' ELSE error_message END,
        updated_at = $3
    WHERE campaign_id = $1 AND contact_id = ANY($2::uuid[]) AND deleted_at IS NULL
    RETURNING 1
)
SELECT (SELECT count(DISTINCT x) FROM unnest($2::uuid[]) x) AS requested,
       (SELECT count(*) FROM removed) AS removed;
