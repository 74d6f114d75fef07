-- What a bulk action's params name, read to check that the caller may use it (the caller's
-- right is decided in Python, services/api/records.py).

-- name: company
SELECT id, organization_id, owner_user_id FROM companies WHERE id = $1;

-- name: pipeline_stage
-- The pipeline, and whether $2 is one of its stages.
SELECT p.id, p.organization_id, p.owner_user_id,
       EXISTS (SELECT 1 FROM pipeline_stages s
               WHERE s.pipeline_id = p.id AND s.id = $2) AS has_stage
FROM pipelines p
WHERE p.id = $1;

-- name: others_contacts
-- How many of the selected contacts ($1) in the caller's context ($2: organization, none in
-- personal mode) someone other than the caller ($3) created: a member may delete or export
-- only their own (permissions.decide_contacts).
SELECT count(*)
FROM contacts
WHERE id = ANY($1::uuid[])
  AND organization_id IS NOT DISTINCT FROM $2::uuid
  AND owner_user_id <> $3
  AND deleted_at IS NULL;
