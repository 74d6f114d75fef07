-- Attachments (docs/flows.md): uploaded once, named by send steps. $2/$3 scope a read to the
-- caller's organization, or to the caller alone in personal mode ($2 NULL).

-- name: insert
INSERT INTO attachments (id, organization_id, owner_user_id, kind, content_type, filename,
                         size_bytes, sha256, data, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id, organization_id, owner_user_id, kind, content_type, filename, size_bytes, sha256,
          created_at;

-- name: get
SELECT id, organization_id, owner_user_id, kind, content_type, filename, size_bytes, sha256,
       created_at
FROM attachments
WHERE id = $1
  AND organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR owner_user_id = $3);

-- name: known
-- Which of these ids the caller may name in a flow.
SELECT id FROM attachments
WHERE id = ANY($1::uuid[])
  AND organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR owner_user_id = $3);
