-- Contacts, owned by the API. In an organization every member shares its contacts; in personal
-- mode a user sees only contacts with no organization that it owns.

-- name: insert
INSERT INTO contacts (organization_id, owner_user_id, telegram_username, phone,
                      telegram_user_id, first_name, last_name, custom_fields, tags)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING *;

-- name: insert_many
-- A CSV import's good rows in one statement.
INSERT INTO contacts (organization_id, owner_user_id, telegram_username, phone,
                      telegram_user_id, first_name, last_name, custom_fields, tags)
SELECT $1, $2, r.telegram_username, r.phone, r.telegram_user_id, r.first_name, r.last_name,
       r.custom_fields, r.tags
FROM jsonb_to_recordset($3::jsonb) AS r(telegram_username text, phone text,
                                         telegram_user_id bigint, first_name text,
                                         last_name text, custom_fields jsonb, tags text[])
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
    custom_fields = $7, tags = $8, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: soft_delete
UPDATE contacts SET deleted_at = now(), updated_at = now() WHERE id = $1;

-- name: list
-- Newest first; keyset on (created_at, id). $4 a tag; $5 a search over names, username, phone.
SELECT * FROM contacts
WHERE deleted_at IS NULL
  AND organization_id IS NOT DISTINCT FROM $1
  AND ($1::uuid IS NOT NULL OR owner_user_id = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $6::uuid))
  AND ($4::text IS NULL OR tags @> ARRAY[$4])
  AND ($5::text IS NULL OR concat_ws(' ', first_name, last_name, telegram_username, phone)
                           ILIKE '%' || $5 || '%')
ORDER BY created_at DESC, id DESC
LIMIT $7;
