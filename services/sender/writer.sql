-- A step's plan, written (staging.Plan): execution progress, the sends not made, the queued
-- records they drop, execution logs, and the contact tags a tag node sets (see
-- docs/architecture.md). Each takes the plan's rows as arrays, one statement per kind.

-- name: save_executions
-- save_execution for many (each execution once).
UPDATE executions e
SET status = s.status, current_node_id = s.node_id, next_execution_at = s.next_at,
    lease_until = s.lease_until, context = jsonb_set(e.context, '{flow}', s.flow::jsonb),
    variant = s.variant, started_at = coalesce(e.started_at, s.now),
    completed_at = s.completed_at, error_message = s.error, updated_at = s.now
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
            $7::timestamptz[], $8::timestamptz[], $9::text[], $10::timestamptz[])
     AS s (id, status, node_id, next_at, flow, variant, now, completed_at, error, lease_until)
WHERE e.id = s.id;

-- name: skip_executions
-- Sends not made (reach.refusal): each execution is cancelled or waits, with the reason, and
-- stays where it stood. started_at is left alone: a step that sent nothing started nothing.
UPDATE executions e
SET status = s.status, next_execution_at = s.next_at, completed_at = s.completed_at,
    error_message = s.reason, lease_until = NULL, updated_at = s.now
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[],
            $6::timestamptz[])
     AS s (id, status, next_at, completed_at, reason, now)
WHERE e.id = s.id;

-- name: drop_send_records
-- The queued records of sends that will not be made (their contact was deleted), so the
-- statistics do not count them in flight for ever.
DELETE FROM messages WHERE id = ANY($1::uuid[]) AND status = 'queued';

-- name: write_logs_many
-- A subquery rather than a join for the contact, so rows keep the order of the walk (ids are
-- given in insertion order, and the log reads in id order within one moment).
INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                            node_type, event, status, message, details, created_at)
SELECT l.campaign_id, l.execution_id, l.contact_id,
       (SELECT log_contact_text(c.first_name, c.last_name, c.telegram_username)
        FROM contacts c WHERE c.id = l.contact_id),
       l.node_id, l.node_type, l.event, l.status, l.message, '{}'::jsonb, l.created_at
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::timestamptz[])
     AS l (campaign_id, execution_id, contact_id, node_id, node_type, event, status, message,
           created_at);

-- name: set_contact_tags
UPDATE contacts SET tags = $2, updated_at = $3 WHERE id = $1;

-- name: usable_stage_moves
-- Of the flow's opportunity moves ($1 contacts, $2 pipelines, $3 stages, pairwise), those whose
-- stage is still its pipeline's and whose pipeline is of the contact's context (its
-- organization's, or its owner's in personal mode), with the stage's name. The stage is held
-- (FOR KEY SHARE) so that it cannot be removed before the upsert below.
SELECT v.contact_id, v.pipeline_id, v.stage_id, s.name AS stage_name
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS v (contact_id, pipeline_id, stage_id)
JOIN contacts ct ON ct.id = v.contact_id
JOIN pipelines p ON p.id = v.pipeline_id
     AND p.organization_id IS NOT DISTINCT FROM ct.organization_id
     AND (ct.organization_id IS NOT NULL OR p.owner_user_id = ct.owner_user_id)
JOIN pipeline_stages s ON s.id = v.stage_id AND s.pipeline_id = p.id
ORDER BY s.id
FOR KEY SHARE OF s;

-- name: lock_opportunities
-- The contacts' opportunities in those pipelines ($1 contacts, $2 pipelines, pairwise), locked
-- in id order, with the stage each stands in before the move.
SELECT o.id, o.contact_id, o.pipeline_id, o.stage_id
FROM opportunities o
JOIN unnest($1::uuid[], $2::uuid[]) AS v (contact_id, pipeline_id)
     ON o.contact_id = v.contact_id AND o.pipeline_id = v.pipeline_id
ORDER BY o.id
FOR UPDATE OF o;

-- name: set_opportunity_stages
-- The moves, in one statement: a contact without an opportunity in the pipeline gets one there
-- (open, named after the contact, created by the campaign's creator); one in another stage is
-- moved; one already there is left as it is (not returned: no event).
INSERT INTO opportunities AS o (pipeline_id, contact_id, stage_id, name, created_by, created_at,
                                updated_at)
SELECT v.pipeline_id, v.contact_id, v.stage_id, v.name, v.created_by, $6, $6
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[])
     AS v (contact_id, pipeline_id, stage_id, name, created_by)
ON CONFLICT (pipeline_id, contact_id) DO UPDATE
SET stage_id = excluded.stage_id, updated_at = excluded.updated_at
WHERE o.stage_id <> excluded.stage_id
RETURNING o.id, o.contact_id, o.pipeline_id, o.stage_id, o.status, o.value;
