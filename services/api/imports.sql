-- Uploads for import_contacts bulk actions (issue 19, item 4): streamed in, one row per record.

-- name: insert
INSERT INTO contact_imports (id, organization_id, created_by, format, created_at)
VALUES ($1, $2, $3, $4, $5);

-- name: insert_rows
-- A piece of the upload: $2 lines, $3 data as JSON text (null for an unreadable record), $4 why.
INSERT INTO contact_import_rows (import_id, line, data, parse_error)
SELECT $1, r.line, r.data::jsonb, r.parse_error
FROM unnest($2::integer[], $3::text[], $4::text[]) AS r(line, data, parse_error);

-- name: close
UPDATE contact_imports SET columns = $2, rows = $3, bytes = $4 WHERE id = $1
RETURNING *;

-- name: get
-- An upload is its uploader's, in the context it was uploaded in.
SELECT * FROM contact_imports
WHERE id = $1 AND created_by = $3 AND organization_id IS NOT DISTINCT FROM $2;

