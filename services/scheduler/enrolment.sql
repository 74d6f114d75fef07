-- Shared by lifecycle.py (the add_contacts command) and bulk_actions.py (the add-to-campaign
-- bulk action), so both enrol contacts the same way. Listed in tests/shared/db/test_queries.py.

-- name: add_contacts
-- One pending execution per contact the actor can see, due now, its context taken from the
-- contact. A contact already in the campaign is skipped; one removed earlier comes back fresh;
-- one on the do-not-contact list is skipped (do_not_contact) and never enrolled.
-- $3/$4: the campaign's organization, or the personal owner when that is null.
WITH wanted AS (
    SELECT DISTINCT unnest($2::uuid[]) AS contact_id
), visible AS (
    -- By primary key: joined with `wanted` instead, the planner misjudges the context filter
    -- (IS NOT DISTINCT FROM) and scans every contact once per contact asked for.
    SELECT c.*, do_not_contact_listed(c.organization_id, c.owner_user_id, c.id,
                                      c.telegram_user_id, c.telegram_username, c.phone) AS listed
    FROM contacts c
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
    WHERE NOT v.listed
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
-- do-not-contact list, and whether it was added.
SELECT w.contact_id, v.id IS NOT NULL AS visible, coalesce(v.listed, false) AS do_not_contact,
       a.contact_id IS NOT NULL AS added
FROM wanted w
LEFT JOIN visible v ON v.id = w.contact_id
LEFT JOIN added a ON a.contact_id = w.contact_id;
