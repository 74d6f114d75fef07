-- Pipelines, their ordered stages, and opportunities read and edited one at a time, owned by
-- the API (the upsert_opportunities bulk action writes opportunities in the scheduler). Like
-- contacts: an organization's are every member's, a personal one its owner's alone.

-- name: insert
INSERT INTO pipelines (organization_id, owner_user_id, name, created_at, updated_at)
VALUES ($1, $2, $3, $4, $4)
RETURNING id;

-- name: insert_stages
-- $2 names in order; a stage's position is its index.
INSERT INTO pipeline_stages (pipeline_id, name, position)
SELECT $1, s.name, s.position
FROM unnest($2::text[], $3::int[]) AS s(name, position);

-- name: get
-- Any pipeline by id with its stages in order; the caller's right to it is decided in Python.
SELECT p.*,
       coalesce((SELECT jsonb_agg(jsonb_build_object('id', s.id, 'name', s.name,
                                                     'position', s.position)
                                  ORDER BY s.position)
                 FROM pipeline_stages s WHERE s.pipeline_id = p.id), '[]'::jsonb) AS stages
FROM pipelines p
WHERE p.id = $1;

-- name: lock
SELECT * FROM pipelines WHERE id = $1 FOR UPDATE;

-- name: stage_ids
SELECT id FROM pipeline_stages WHERE pipeline_id = $1 ORDER BY position;

-- name: stages_in_use
-- The stages of the pipeline that opportunities stand in (they cannot be removed).
SELECT DISTINCT stage_id FROM opportunities WHERE pipeline_id = $1;

-- name: rename
UPDATE pipelines SET name = $2, updated_at = $3 WHERE id = $1;

-- name: move_stages
UPDATE pipeline_stages s
SET name = v.name, position = v.position
FROM unnest($2::uuid[], $3::text[], $4::int[]) AS v(id, name, position)
WHERE s.pipeline_id = $1 AND s.id = v.id;

-- name: remove_stages
DELETE FROM pipeline_stages WHERE pipeline_id = $1 AND id = ANY($2::uuid[]);

-- name: delete
-- Its stages and opportunities go with it.
DELETE FROM pipelines WHERE id = $1;

-- name: list
-- Newest first, keyset on (created_at, id), in the caller's context ($1 organization, or $2
-- the personal owner); $3 a search over the name.
SELECT p.*,
       coalesce((SELECT jsonb_agg(jsonb_build_object('id', s.id, 'name', s.name,
                                                     'position', s.position)
                                  ORDER BY s.position)
                 FROM pipeline_stages s WHERE s.pipeline_id = p.id), '[]'::jsonb) AS stages
FROM pipelines p
WHERE p.organization_id IS NOT DISTINCT FROM $1
  AND ($1::uuid IS NOT NULL OR p.owner_user_id = $2)
  AND ($3::text IS NULL OR p.name ILIKE '%' || $3 || '%')
  AND ($4::timestamptz IS NULL OR (p.created_at, p.id) < ($4, $5::uuid))
ORDER BY p.created_at DESC, p.id DESC
LIMIT $6;

-- name: opportunities
-- A pipeline's opportunities of live contacts, newest first, keyset on (created_at, id);
-- filters $2 stage, $3 status, $4 contact.
SELECT o.*, s.name AS stage_name
FROM opportunities o
JOIN pipeline_stages s ON s.id = o.stage_id
JOIN contacts c ON c.id = o.contact_id AND c.deleted_at IS NULL
WHERE o.pipeline_id = $1
  AND ($2::uuid IS NULL OR o.stage_id = $2)
  AND ($3::text IS NULL OR o.status = $3)
  AND ($4::uuid IS NULL OR o.contact_id = $4)
  AND ($5::timestamptz IS NULL OR (o.created_at, o.id) < ($5, $6::uuid))
ORDER BY o.created_at DESC, o.id DESC
LIMIT $7;

-- name: opportunity
-- One opportunity with its stage and the pipeline's context (for the caller's right to it).
SELECT o.*, s.name AS stage_name, p.organization_id, p.owner_user_id
FROM opportunities o
JOIN pipeline_stages s ON s.id = o.stage_id
JOIN pipelines p ON p.id = o.pipeline_id
WHERE o.id = $1;

-- name: lock_opportunity
SELECT o.*, p.organization_id, p.owner_user_id
FROM opportunities o
JOIN pipelines p ON p.id = o.pipeline_id
WHERE o.id = $1
FOR UPDATE OF o;

-- name: stage_of
-- A stage of this pipeline, or nothing.
SELECT id, name FROM pipeline_stages WHERE id = $1 AND pipeline_id = $2;

-- name: update_opportunity
UPDATE opportunities
SET stage_id = $2, name = $3, value = $4, status = $5, custom_fields = $6, updated_at = $7
WHERE id = $1;

-- name: flow_stages
-- The pipelines and stages a flow names ($1, $2 pairwise), of those the caller may use (its
-- organization's, or its own in personal mode): one row per pipeline found, with whether the
-- stage is that pipeline's.
SELECT DISTINCT p.id AS pipeline_id, v.stage_id,
       EXISTS (SELECT 1 FROM pipeline_stages s
               WHERE s.id = v.stage_id AND s.pipeline_id = p.id) AS stage_known
FROM unnest($1::uuid[], $2::uuid[]) AS v (pipeline_id, stage_id)
JOIN pipelines p ON p.id = v.pipeline_id
WHERE p.organization_id IS NOT DISTINCT FROM $3
  AND ($3::uuid IS NOT NULL OR p.owner_user_id = $4);
