-- Contacts, owned by the API. In an organization every member shares its contacts; in personal
-- mode a user sees only contacts with no organization that it owns.

-- name: insert
INSERT INTO contacts (organization_id, owner_user_id, telegram_username, phone,
                      telegram_user_id, first_name, last_name, custom_fields, tags, company_id,
                      time_zone)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING *;

-- name: company_in_context
-- A company a contact of this context may join: the organization's ($2), or in personal mode
-- the user's own ($3).
SELECT EXISTS (SELECT 1 FROM companies
               WHERE id = $1 AND organization_id IS NOT DISTINCT FROM $2
                 AND ($2::uuid IS NOT NULL OR owner_user_id = $3));

-- name: insert_many
-- A CSV import's good rows in one statement.
INSERT INTO contacts (organization_id, owner_user_id, telegram_username, phone,
                      telegram_user_id, first_name, last_name, custom_fields, tags, time_zone)
SELECT $1, $2, r.telegram_username, r.phone, r.telegram_user_id, r.first_name, r.last_name,
       r.custom_fields, r.tags, r.time_zone
FROM jsonb_to_recordset($3::jsonb) AS r(telegram_username text, phone text,
                                         telegram_user_id bigint, first_name text,
                                         last_name text, custom_fields jsonb, tags text[],
                                         time_zone text)
RETURNING id;

-- name: get
-- A contact in the caller's context ($2 organization, or $3 the personal owner).
SELECT * FROM contacts
WHERE id = $1 AND deleted_at IS NULL
  AND organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR owner_user_id = $3);

-- name: update
UPDATE contacts
SET telegram_username = $2, phone = $3, telegram_user_id = $4, first_name = $5, last_name = $6,
    custom_fields = $7, tags = $8, company_id = $9, time_zone = $10, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: lock_memberships
-- Before the contact: the order a step takes (its execution, then a tag node's contact row), so
-- a deletion and a step cannot deadlock; the step that holds one finishes first.
SELECT id FROM executions WHERE contact_id = $1 AND deleted_at IS NULL ORDER BY id FOR UPDATE;

-- name: delete_contact
-- Soft delete; the contact also leaves every campaign it was in, as the delete_contacts bulk
-- action does (scheduler/bulk_actions.sql): its executions are removed, history kept, and
-- the unfinished ones cancelled with the reason contact_deleted. Answers each execution it
-- changed with the status it had, for their execution.progressed events.
WITH target AS (
    SELECT id FROM contacts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE
), before AS (
    SELECT e.id, e.status FROM executions e
    WHERE e.contact_id IN (SELECT id FROM target) AND e.deleted_at IS NULL
), left_campaigns AS (
    UPDATE executions e
    SET deleted_at = $2,
        status = CASE WHEN e.status IN {{EXECUTIONS_UNFINISHED}}
                      THEN 'cancelled' ELSE e.status END,
        completed_at = coalesce(e.completed_at, $2),
        error_message = CASE WHEN e.status IN {{EXECUTIONS_UNFINISHED}}
                             THEN 'contact_deleted' ELSE e.error_message END,
        lease_until = NULL, updated_at = $2
    FROM before b
    WHERE e.id = b.id
    RETURNING e.id, e.campaign_id, e.contact_id, e.current_node_id, e.status,
              b.status AS previous_status
), deleted AS (
    UPDATE contacts SET deleted_at = $2, updated_at = $2 WHERE id IN (SELECT id FROM target)
)
SELECT id, campaign_id, contact_id, current_node_id, status, previous_status FROM left_campaigns;

-- name: list_organization
-- An organization's contacts ($1), newest first; keyset on (created_at, id) after ($2, $3). $4 a
-- tag; $5 a search over names, username, phone; $6 a company. Two queries, one per context,
-- with the scope spelt as contacts_org_idx and contacts_owner_idx are: one query for both
-- (`organization_id IS NOT DISTINCT FROM $1 AND ($1 IS NOT NULL OR owner_user_id = $2)`) can
-- use neither, and read the whole table and sorted it on every page (3-4 ms at 20,000 contacts).
SELECT * FROM contacts
WHERE deleted_at IS NULL AND organization_id = $1
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
  AND ($4::text IS NULL OR tags @> ARRAY[$4])
  AND ($5::text IS NULL OR concat_ws(' ', first_name, last_name, telegram_username, phone)
                           ILIKE '%' || $5 || '%')
  AND ($6::uuid IS NULL OR company_id = $6)
ORDER BY created_at DESC, id DESC
LIMIT $7;

-- name: list_personal
-- A user's own contacts in personal mode ($1 the user), as list_organization.
SELECT * FROM contacts
WHERE deleted_at IS NULL AND organization_id IS NULL AND owner_user_id = $1
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
  AND ($4::text IS NULL OR tags @> ARRAY[$4])
  AND ($5::text IS NULL OR concat_ws(' ', first_name, last_name, telegram_username, phone)
                           ILIKE '%' || $5 || '%')
  AND ($6::uuid IS NULL OR company_id = $6)
ORDER BY created_at DESC, id DESC
LIMIT $7;
