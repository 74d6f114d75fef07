-- Bulk actions over contacts (specs 002/003): the scheduler releases each batch and applies it
-- in the same transaction, so a batch is released exactly once.

-- name: due_action
-- An action with a batch due; another scheduler holding it skips it.
SELECT * FROM bulk_actions
WHERE status IN ('queued', 'processing') AND next_batch_at <= $1
ORDER BY next_batch_at
LIMIT 1
FOR UPDATE SKIP LOCKED;

-- name: select_ids
INSERT INTO bulk_action_items (bulk_action_id, contact_id)
SELECT $1, c.id FROM contacts c
WHERE c.id = ANY($2::uuid[]) AND {where}
ON CONFLICT DO NOTHING;

-- name: select_matching
-- {where}: the selection (shared/db/contact_filter.py) in the actor's context; $1 the action.
INSERT INTO bulk_action_items (bulk_action_id, contact_id)
SELECT $1, c.id FROM contacts c WHERE {where}
ON CONFLICT DO NOTHING;

-- name: select_restorable
-- A restore: the contacts its delete action deleted, with the memberships they had.
INSERT INTO bulk_action_items (bulk_action_id, contact_id, details)
SELECT $1, i.contact_id, i.details FROM bulk_action_items i
WHERE i.bulk_action_id = $2 AND i.status = 'succeeded';

-- name: start
UPDATE bulk_actions
SET status = 'processing', started_at = $2, updated_at = $2,
    total = (SELECT count(*) FROM bulk_action_items WHERE bulk_action_id = $1)
WHERE id = $1
RETURNING *;

-- name: claim_batch
-- The next contacts in id order after the previous batch's last ($3).
SELECT i.contact_id, i.details FROM bulk_action_items i
WHERE i.bulk_action_id = $1 AND i.status = 'pending'
  AND ($3::uuid IS NULL OR i.contact_id > $3)
ORDER BY i.contact_id
LIMIT $2;

-- name: record_items
UPDATE bulk_action_items i
SET status = v.status, error_code = v.code, error_message = v.message, details = v.details,
    batch_number = $2, processed_at = $3
FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::jsonb[])
     AS v(contact_id, status, code, message, details)
WHERE i.bulk_action_id = $1 AND i.contact_id = v.contact_id;

-- name: count_batch
-- $7: nothing is pending any more; $8 the next batch's time otherwise.
UPDATE bulk_actions
SET processed = processed + $2, success_count = success_count + $3,
    skipped_count = skipped_count + $4, error_count = error_count + $5,
    batches = batches + 1, last_batch_at = $6, updated_at = $6, last_contact_id = $9,
    status = CASE WHEN $7::boolean THEN 'completed' ELSE 'processing' END,
    completed_at = CASE WHEN $7::boolean THEN $6::timestamptz END,
    next_batch_at = CASE WHEN $7::boolean THEN NULL ELSE $8::timestamptz END
WHERE id = $1
RETURNING *;

-- name: fail
UPDATE bulk_actions
SET status = 'failed', error_message = $2, completed_at = $3, next_batch_at = NULL,
    updated_at = $3
WHERE id = $1
RETURNING *;

-- name: any_pending
SELECT EXISTS (SELECT 1 FROM bulk_action_items
               WHERE bulk_action_id = $1 AND status = 'pending' AND contact_id > $2);

-- name: carrier_campaign
-- A send_message action's own campaign (created by the API with the action).
SELECT id FROM campaigns WHERE bulk_action_id = $1;

-- name: add_tags
WITH target AS (
    SELECT id, tags @> $2::text[] AS had FROM contacts
    WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
    ORDER BY id FOR UPDATE
), changed AS (
    UPDATE contacts c
    SET tags = ARRAY(SELECT DISTINCT t FROM unnest(c.tags || $2::text[]) AS t ORDER BY t),
        updated_at = $3
    FROM target
    WHERE c.id = target.id AND NOT target.had
    RETURNING c.id
)
SELECT id, had FROM target;

-- name: remove_tags
-- $2 the tags to remove, or null for every tag.
WITH target AS (
    SELECT id, CASE WHEN $2::text[] IS NULL THEN cardinality(tags) > 0
                    ELSE tags && $2::text[] END AS had
    FROM contacts
    WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
    ORDER BY id FOR UPDATE
), changed AS (
    UPDATE contacts c
    SET tags = CASE WHEN $2::text[] IS NULL THEN '{}'::text[]
                    ELSE ARRAY(SELECT t FROM unnest(c.tags) AS t WHERE t <> ALL ($2::text[])) END,
        updated_at = $3
    FROM target
    WHERE c.id = target.id AND target.had
    RETURNING c.id
)
SELECT id, had FROM target;

-- name: lock_memberships
-- Before delete_contacts: the batch's executions, in id order, before its contacts (also in id
-- order). That is the order a sender step takes (its execution, then a tag node's contact row),
-- so a delete batch and a step cannot deadlock, nor two batches.
SELECT id FROM executions WHERE contact_id = ANY($1::uuid[]) AND deleted_at IS NULL
ORDER BY id FOR UPDATE;

-- name: delete_contacts
-- Soft delete; the contact also leaves every campaign it was in (its executions are removed as
-- by "remove contacts", history kept). Answers each deleted contact with those campaigns.
-- Run after lock_memberships.
WITH target AS (
    SELECT id FROM contacts WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
    ORDER BY id FOR UPDATE
), left_campaigns AS (
    UPDATE executions
    SET deleted_at = $2,
        status = CASE WHEN status IN {{EXECUTIONS_UNFINISHED}}
                      THEN 'cancelled' ELSE status END,
        completed_at = coalesce(completed_at, $2),
        error_message = CASE WHEN status IN {{EXECUTIONS_UNFINISHED}}
                             THEN 'contact_deleted' ELSE error_message END,
        lease_until = NULL, updated_at = $2
    WHERE contact_id IN (SELECT id FROM target) AND deleted_at IS NULL
    RETURNING contact_id, campaign_id
), deleted AS (
    UPDATE contacts SET deleted_at = $2, updated_at = $2
    WHERE id IN (SELECT id FROM target)
    RETURNING id
)
SELECT d.id,
       coalesce(array_agg(l.campaign_id) FILTER (WHERE l.campaign_id IS NOT NULL),
                '{}'::uuid[]) AS campaigns
FROM deleted d
LEFT JOIN left_campaigns l ON l.contact_id = d.id
GROUP BY d.id;

-- name: undelete_contacts
UPDATE contacts SET deleted_at = NULL, updated_at = $2
WHERE id = ANY($1::uuid[]) AND deleted_at IS NOT NULL
RETURNING id;

-- name: live_campaigns
-- Of these campaigns, the ones that still exist (a restore brings memberships back only there).
SELECT id, organization_id, created_by, telegram_account_id FROM campaigns
WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL;

-- name: export_rows
SELECT id, first_name, last_name, telegram_username, phone, telegram_user_id, tags,
       custom_fields, created_at
FROM contacts
WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
ORDER BY id;

-- name: open_export
INSERT INTO exports (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING;

-- name: export_chunk
INSERT INTO export_chunks (export_id, seq, data) VALUES ($1, $2, $3);

-- name: count_export
UPDATE exports SET rows = rows + $2, bytes = bytes + $3, chunks = chunks + 1 WHERE id = $1;

-- name: close_export
UPDATE exports SET completed_at = $2 WHERE id = $1;

-- Companies and opportunities (issue 19) ---------------------------------------------------

-- name: company_of_action
-- The company an add_to_company or remove_from_company action names, in the action's own
-- context ($2 organization, or $3 the personal owner): one deleted since is gone.
SELECT id FROM companies
WHERE id = $1 AND organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR owner_user_id = $3)
FOR SHARE;

-- name: join_company
-- Each live contact of the batch with the company it was in before; the ones in another
-- company (or none) move to $2.
WITH target AS (
    SELECT id, company_id AS previous FROM contacts
    WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
    ORDER BY id FOR UPDATE
), changed AS (
    UPDATE contacts c SET company_id = $2, updated_at = $3
    FROM target
    WHERE c.id = target.id AND target.previous IS DISTINCT FROM $2
    RETURNING c.id
)
SELECT id, previous FROM target;

-- name: leave_company
-- Each live contact of the batch and whether it was in company $2, which it leaves.
WITH target AS (
    SELECT id, coalesce(company_id = $2, false) AS member FROM contacts
    WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
    ORDER BY id FOR UPDATE
), changed AS (
    UPDATE contacts c SET company_id = NULL, updated_at = $3
    FROM target
    WHERE c.id = target.id AND target.member
    RETURNING c.id
)
SELECT id, member FROM target;

-- name: pipeline_of_action
-- The pipeline and stage an upsert_opportunities action names, in the action's context (as
-- company_of_action); nothing if either is gone.
SELECT p.id, s.name AS stage_name FROM pipelines p
JOIN pipeline_stages s ON s.pipeline_id = p.id AND s.id = $4
WHERE p.id = $1 AND p.organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR p.owner_user_id = $3)
FOR SHARE OF p;

-- name: opportunity_contacts
-- The batch's live contacts, with what a new opportunity is named after.
SELECT id, first_name, last_name, telegram_username, phone FROM contacts
WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
ORDER BY id FOR KEY SHARE;

-- name: current_opportunities
SELECT * FROM opportunities
WHERE pipeline_id = $1 AND contact_id = ANY($2::uuid[])
ORDER BY id FOR UPDATE;

-- name: upsert_opportunities
-- The batch's new and changed opportunities in one statement.
INSERT INTO opportunities (pipeline_id, contact_id, stage_id, name, value, status,
                           custom_fields, created_by, created_at, updated_at)
SELECT $1, v.contact_id, v.stage_id, v.name, v.value, v.status, v.custom_fields, $2, $3, $3
FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::numeric[], $8::text[], $9::jsonb[])
     AS v(contact_id, stage_id, name, value, status, custom_fields)
ON CONFLICT (pipeline_id, contact_id) DO UPDATE
SET stage_id = excluded.stage_id, name = excluded.name, value = excluded.value,
    status = excluded.status, custom_fields = excluded.custom_fields, updated_at = $3
RETURNING id, contact_id;
