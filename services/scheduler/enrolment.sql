-- Shared by lifecycle.py (the add_contacts command) and bulk_actions.py (the add-to-campaign
-- bulk action), so both enrol contacts the same way. Listed in tests/shared/db/test_queries.py.

-- name: add_contacts
-- One pending execution per contact the actor can see, due now, its context taken from the
-- contact. A contact already in the campaign is skipped; one removed earlier comes back fresh;
-- one on the do-not-contact list is skipped (do_not_contact) and never enrolled; with the
-- organization's recontact_after_days set, one that any campaign of the organization sent a
-- message within that many days is skipped too (recently_contacted), as the sender would
-- refuse its first send (shared/domain/reach.py: "messaged" is an outgoing message with
-- sent_at, probed through messages_contact_sent_idx, measured from $6).
-- $3/$4: the campaign's organization, or the personal owner when that is null.
WITH wanted AS (
    SELECT DISTINCT unnest($2::uuid[]) AS contact_id
), setting AS (
    -- Null (off) in personal mode and while the organization has not set it.
    SELECT (SELECT (o.settings ->> 'recontact_after_days')::integer
            FROM organizations o WHERE o.id = $3) AS days
), visible AS (
    -- By primary key: joined with `wanted` instead, the planner misjudges the context filter
    -- (IS NOT DISTINCT FROM) and scans every contact once per contact asked for.
    SELECT c.*, do_not_contact_listed(c.organization_id, c.owner_user_id, c.id,
                                      c.telegram_user_id, c.telegram_username, c.phone) AS listed,
           -- A contact already in this campaign is a duplicate, whoever messaged it.
           s.days IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM executions e
                           WHERE e.campaign_id = $1 AND e.contact_id = c.id
                             AND e.deleted_at IS NULL)
           AND EXISTS (SELECT 1 FROM messages m
                       WHERE m.contact_id = c.id AND m.direction = 'outgoing'
                         AND m.sent_at IS NOT NULL AND m.status IN ('sent', 'delivered', 'read')
                         AND m.sent_at > $6::timestamptz - make_interval(days => s.days)) AS recent
    FROM contacts c CROSS JOIN setting s
    WHERE c.id = ANY($2::uuid[])
      AND c.deleted_at IS NULL
      AND c.organization_id IS NOT DISTINCT FROM $3
      AND ($3::uuid IS NOT NULL OR c.owner_user_id = $4)
), added AS (
    INSERT INTO executions (campaign_id, contact_id, telegram_account_id, status,
                            next_execution_at, context, created_at, updated_at)
    SELECT $1, v.id, $5, 'pending', $6,
           jsonb_build_object('contact', jsonb_build_object(
               'first_name', v.first_name, 'last_name', v.last_name,
               'telegram_username', v.telegram_username, 'phone', v.phone,
               'telegram_user_id', v.telegram_user_id, 'tags', to_jsonb(v.tags),
               'custom_fields', v.custom_fields)),
           $6, $6
    FROM visible v
    WHERE NOT v.listed AND NOT v.recent
    ON CONFLICT (campaign_id, contact_id) DO UPDATE
    SET status = 'pending', deleted_at = NULL, current_node_id = NULL, variant = NULL,
        next_execution_at = excluded.next_execution_at, context = excluded.context,
        telegram_account_id = excluded.telegram_account_id, error_message = NULL,
        attempts = 0, dispatched_at = NULL, started_at = NULL, completed_at = NULL,
        updated_at = excluded.updated_at
    WHERE executions.deleted_at IS NOT NULL
    RETURNING contact_id
)
-- One row per contact asked for: whether the actor can see it, whether it is on the
-- do-not-contact list or was recently contacted, whether it was added, and, for one added,
-- whether it has an unfinished execution in another active campaign of the same organization
-- (or personal owner): informational, it is added all the same. Through
-- executions_contact_idx: a contact is in few campaigns.
SELECT w.contact_id, v.id IS NOT NULL AS visible, coalesce(v.listed, false) AS do_not_contact,
       coalesce(v.recent AND NOT v.listed, false) AS recently_contacted,
       a.contact_id IS NOT NULL AS added,
       a.contact_id IS NOT NULL AND EXISTS (
           SELECT 1 FROM executions o
           JOIN campaigns oc ON oc.id = o.campaign_id
           WHERE o.contact_id = a.contact_id AND o.campaign_id <> $1
             AND o.deleted_at IS NULL AND o.status IN ('pending', 'running', 'waiting', 'paused')
             AND oc.status = 'active' AND oc.deleted_at IS NULL
             AND oc.organization_id IS NOT DISTINCT FROM $3
             AND ($3::uuid IS NOT NULL OR oc.created_by = $4)
       ) AS in_other_active_campaign
FROM wanted w
LEFT JOIN visible v ON v.id = w.contact_id
LEFT JOIN added a ON a.contact_id = w.contact_id;
