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

-- name: record_context_activity
-- The fleet breaker paused or resumed a context's sending ($6: the organization, or $7: the user
-- in personal mode): in the feed of every unfinished campaign sending from one of its accounts.
INSERT INTO campaign_activities (campaign_id, message_id, type, summary, details, occurred_at)
SELECT c.id, md5($1 || c.id::text)::uuid, $2, $3, $4, $5
FROM campaigns c
JOIN telegram_accounts a ON a.id = c.telegram_account_id
WHERE c.deleted_at IS NULL AND c.status IN ('scheduled', 'active', 'paused')
  AND CASE WHEN $6::uuid IS NOT NULL THEN a.organization_id = $6
           ELSE a.organization_id IS NULL AND a.owner_user_id = $7 END
ON CONFLICT (message_id) DO NOTHING;

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
