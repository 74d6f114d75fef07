-- Companies, owned by the API. Like contacts, an organization's companies are every member's;
-- in personal mode a user has only its own (organization_id null).

-- name: insert
INSERT INTO companies (organization_id, owner_user_id, name, domain, telegram_channel,
                       custom_fields, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
RETURNING *, 0 AS contacts;

-- name: get
-- Any company by id, with its live contacts; the caller's right to it is decided in Python
-- (permissions.decide_record), so that another context's company is a 404.
SELECT co.*,
       (SELECT count(*) FROM contacts c
        WHERE c.company_id = co.id AND c.deleted_at IS NULL) AS contacts
FROM companies co
WHERE co.id = $1;

-- name: lock
SELECT * FROM companies WHERE id = $1 FOR UPDATE;

-- name: update
UPDATE companies
SET name = $2, domain = $3, telegram_channel = $4, custom_fields = $5, updated_at = $6
WHERE id = $1;

-- name: delete
-- Its contacts stay, without a company (the foreign key sets company_id to null).
DELETE FROM companies WHERE id = $1;

-- name: list
-- Newest first, keyset on (created_at, id), in the caller's context ($1 organization, or $2
-- the personal owner). $3 a search over name, domain and channel (a LIKE pattern, escaped);
-- $4 the exact domain; $5 the exact channel (case-insensitive, as Telegram treats it).
SELECT co.*,
       (SELECT count(*) FROM contacts c
        WHERE c.company_id = co.id AND c.deleted_at IS NULL) AS contacts
FROM companies co
WHERE co.organization_id IS NOT DISTINCT FROM $1
  AND ($1::uuid IS NOT NULL OR co.owner_user_id = $2)
  AND ($3::text IS NULL
       OR concat_ws(' ', co.name, co.domain, co.telegram_channel) ILIKE '%' || $3 || '%')
  AND ($4::text IS NULL OR co.domain = $4)
  AND ($5::text IS NULL OR lower(co.telegram_channel) = lower($5))
  AND ($6::timestamptz IS NULL OR (co.created_at, co.id) < ($6, $7::uuid))
ORDER BY co.created_at DESC, co.id DESC
LIMIT $8;
