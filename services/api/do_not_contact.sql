-- The do-not-contact list (docs/do-not-contact.md): the API's endpoints and its consumer of
-- dripline.contact.commands. $list is the organization id, or the user id in personal mode.

-- name: add_many
-- Entries not already on the list; one already there is kept as it was (the first reason and
-- who added it stand). Returns the entries this call added.
INSERT INTO do_not_contact (organization_id, user_id, kind, value, reason, source, note,
                            contact_id, added_by, created_at)
SELECT $1, CASE WHEN $1::uuid IS NULL THEN $2::uuid END, e.kind, e.value, e.reason, $3, e.note,
       e.contact_id, $4, $5
FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::uuid[])
     AS e (kind, value, reason, note, contact_id)
ON CONFLICT (list_id, kind, value) DO NOTHING
RETURNING *;

-- name: find
SELECT * FROM do_not_contact WHERE list_id = $1 AND kind = $2 AND value = $3;

-- name: get
SELECT * FROM do_not_contact WHERE id = $1 AND list_id = $2;

-- name: remove
DELETE FROM do_not_contact WHERE id = $1 AND list_id = $2 RETURNING *;

-- name: remove_key
DELETE FROM do_not_contact WHERE list_id = $1 AND kind = $2 AND value = $3 RETURNING *;

-- name: list
-- Newest first; keyset on (created_at, id). Filters: kind, reason, source, and $5 a prefix of
-- the normalised value (LIKE-escaped by the caller).
SELECT * FROM do_not_contact
WHERE list_id = $1
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
  AND ($4::text IS NULL OR kind = $4)
  AND ($5::text IS NULL OR value LIKE $5 || '%')
  AND ($6::text IS NULL OR reason = $6)
  AND ($7::text IS NULL OR source = $7)
ORDER BY created_at DESC, id DESC
LIMIT $8;

-- name: member_role
-- A Kafka command's actor in its organization: the role, or no row for a non-member.
SELECT role FROM memberships WHERE organization_id = $1 AND user_id = $2;
