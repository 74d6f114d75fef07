-- Other systems' contact commands (dripline.contact.commands, issue 16), applied by the API in
-- the consumer's transaction. $1/$2: the actor's organization, or null and the personal owner.

-- name: find_by_external_id
-- Deleted contacts included: an external id names one contact for good.
SELECT * FROM contacts
WHERE coalesce(organization_id, owner_user_id) = coalesce($1::uuid, $2::uuid)
  AND external_id = $3
FOR UPDATE;

-- name: find_by_username
SELECT * FROM contacts
WHERE organization_id IS NOT DISTINCT FROM $1 AND ($1::uuid IS NOT NULL OR owner_user_id = $2)
  AND deleted_at IS NULL AND lower(telegram_username) = lower($3)
ORDER BY created_at, id
LIMIT 1
FOR UPDATE;

-- name: find_by_phone
SELECT * FROM contacts
WHERE organization_id IS NOT DISTINCT FROM $1 AND ($1::uuid IS NOT NULL OR owner_user_id = $2)
  AND deleted_at IS NULL AND phone = $3
ORDER BY created_at, id
LIMIT 1
FOR UPDATE;

-- name: find_by_id
SELECT * FROM contacts
WHERE organization_id IS NOT DISTINCT FROM $1 AND ($1::uuid IS NOT NULL OR owner_user_id = $2)
  AND id = $3
FOR UPDATE;

-- name: insert
INSERT INTO contacts (organization_id, owner_user_id, external_id, telegram_username, phone,
                      telegram_user_id, first_name, last_name, custom_fields, time_zone, tags)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::jsonb, '{}'::jsonb), $10,
        coalesce($11::text[], '{}'))
RETURNING *;

-- name: update
-- The fields the command gave (null: keep); custom fields are merged, tags replaced.
UPDATE contacts
SET external_id = coalesce($2, external_id),
    telegram_username = coalesce($3, telegram_username),
    phone = coalesce($4, phone),
    telegram_user_id = coalesce($5, telegram_user_id),
    first_name = coalesce($6, first_name),
    last_name = coalesce($7, last_name),
    custom_fields = custom_fields || coalesce($8::jsonb, '{}'::jsonb),
    time_zone = coalesce($9, time_zone),
    tags = coalesce($10::text[], tags),
    updated_at = $11
WHERE id = $1
RETURNING *;

-- name: add_tags
-- Each tag once, the ones it had first.
UPDATE contacts
SET tags = tags || ARRAY(SELECT DISTINCT t FROM unnest($2::text[]) t WHERE t <> ALL (tags)),
    updated_at = $3
WHERE id = $1
RETURNING *;

-- name: remove_tags
UPDATE contacts
SET tags = ARRAY(SELECT t FROM unnest(tags) t WHERE t <> ALL ($2::text[])), updated_at = $3
WHERE id = $1
RETURNING *;

-- name: restore
-- Its campaign memberships are not brought back (as for a contact deleted over HTTP).
UPDATE contacts SET deleted_at = NULL, updated_at = $2 WHERE id = $1 RETURNING *;

-- name: get
SELECT * FROM contacts WHERE id = $1;

-- name: member_role
-- The actor's role in the organization the command names, or no row for a non-member.
SELECT role FROM memberships WHERE organization_id = $1 AND user_id = $2;
