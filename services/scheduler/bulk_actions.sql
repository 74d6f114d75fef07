-- Bulk actions over contacts (specs 002/003): the scheduler releases each batch and applies it
-- in the same transaction, so a batch is released exactly once.

-- name: due_action
-- An action with a batch due; another scheduler holding it skips it.
SELECT * FROM bulk_actions
WHERE status IN ('queued', 'processing') AND next_batch_at <= $1
ORDER BY next_batch_at
LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED;

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
    total = CASE WHEN action = 'import_contacts' THEN total  -- its upload's rows
                 ELSE (SELECT count(*) FROM bulk_action_items WHERE bulk_action_id = $1) END
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
SELECT id, first_name, last_name, telegram_username, phone, telegram_user_id, time_zone, tags,
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

-- Merging two contacts (issue 19, item 1) ---------------------------------------------------

-- name: merge_lock_contacts
-- Both contacts, locked in id order; a deleted one (or one merged already) is not returned.
SELECT id, organization_id, owner_user_id, first_name, last_name, telegram_username, phone,
       telegram_user_id, company_id, time_zone, tags, custom_fields
FROM contacts
WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
ORDER BY id
FOR UPDATE;

-- name: merge_executions
-- Both contacts' executions, locked, with what decides which is further along, and whether a
-- send is in flight (leased, or a message queued or of unknown fate).
SELECT e.id, e.campaign_id, e.contact_id, e.status, e.started_at IS NOT NULL AS started,
       e.deleted_at IS NOT NULL AS removed,
       coalesce(e.lease_until > $2, false)
           OR EXISTS (SELECT 1 FROM messages m
                      WHERE m.execution_id = e.id AND m.direction = 'outgoing'
                        AND m.status IN ('queued', 'unknown')) AS in_flight,
       EXISTS (SELECT 1 FROM messages m
               WHERE m.execution_id = e.id AND m.direction = 'incoming') AS replied,
       (SELECT count(*) FROM messages m
        WHERE m.execution_id = e.id AND m.direction = 'outgoing'
          AND m.status <> 'failed')::int AS messages_sent
FROM executions e
WHERE e.contact_id = ANY($1::uuid[])
ORDER BY e.id
FOR UPDATE OF e;

-- name: merge_swap_executions
-- Where the other contact's execution is kept, the two executions of a campaign swap their
-- progress (a campaign holds one execution per contact, so the rows keep their contacts and
-- exchange what they hold), and their messages and log entries follow: $1 the master's, $2
-- the other's, pairwise.
WITH pairs AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS p(a, b)
    UNION ALL
    SELECT b, a FROM unnest($1::uuid[], $2::uuid[]) AS p(a, b)
), moved_messages AS (
    UPDATE messages m SET execution_id = p.b
    FROM pairs p WHERE m.execution_id = p.a
    RETURNING m.id
), moved_logs AS (
    UPDATE execution_logs l SET execution_id = p.b
    FROM pairs p WHERE l.execution_id = p.a
    RETURNING l.id
), moved_conversations AS (
    UPDATE conversations c SET execution_id = p.b
    FROM pairs p WHERE c.execution_id = p.a
    RETURNING c.id
)
UPDATE executions e
SET telegram_account_id = s.telegram_account_id, status = s.status,
    current_node_id = s.current_node_id, next_execution_at = s.next_execution_at,
    variant = s.variant, context = s.context, error_message = s.error_message,
    attempts = s.attempts, dispatched_at = s.dispatched_at, started_at = s.started_at,
    completed_at = s.completed_at, created_at = s.created_at, deleted_at = s.deleted_at,
    lease_until = s.lease_until, updated_at = $3
FROM pairs p
JOIN executions s ON s.id = p.b
WHERE e.id = p.a;

-- name: merge_cancel_executions
-- The executions that lost to the master's in their campaign: cancelled with `merged`.
UPDATE executions
SET status = CASE WHEN status IN {{EXECUTIONS_UNFINISHED}} THEN 'cancelled' ELSE status END,
    error_message = CASE WHEN status IN {{EXECUTIONS_UNFINISHED}} THEN 'merged'
                         ELSE error_message END,
    completed_at = CASE WHEN status IN {{EXECUTIONS_UNFINISHED}} THEN coalesce(completed_at, $2)
                        ELSE completed_at END,
    next_execution_at = NULL, lease_until = NULL, updated_at = $2
WHERE id = ANY($1::uuid[]);

-- name: merge_lock_conversations
-- Both contacts' inbox conversations, locked in id order (after the executions), so the join
-- below reads what the sender committed last.
SELECT id FROM conversations WHERE contact_id = ANY($1::uuid[]) ORDER BY id FOR UPDATE;

-- name: merge_conversations
-- The other contact ($2)'s inbox conversations (0021) become the master's ($1), locked before
-- (merge_lock_conversations). On an account where both have one, the two are joined into the
-- master's: the latest message, campaign and execution of whichever was written last (the
-- master's on a tie), the latest reply, the unread counts added, the master's takeover or else
-- the other's, the earlier creation; the other's row is then deleted. Elsewhere the other's
-- row simply becomes the master's. Returns how many were moved and how many joined.
WITH pairs AS (
    SELECT m.id AS master_id, o.id AS other_id,
           o.last_message_at > m.last_message_at AS other_later
    FROM conversations m
    JOIN conversations o ON o.telegram_account_id = m.telegram_account_id AND o.contact_id = $2
    WHERE m.contact_id = $1
), joined AS (
    UPDATE conversations m
    SET last_message_id = CASE WHEN p.other_later THEN o.last_message_id ELSE m.last_message_id END,
        last_direction = CASE WHEN p.other_later THEN o.last_direction ELSE m.last_direction END,
        last_body = CASE WHEN p.other_later THEN o.last_body ELSE m.last_body END,
        last_message_at = greatest(m.last_message_at, o.last_message_at),
        campaign_id = CASE WHEN p.other_later THEN o.campaign_id ELSE m.campaign_id END,
        execution_id = CASE WHEN p.other_later THEN o.execution_id ELSE m.execution_id END,
        last_reply_at = greatest(m.last_reply_at, o.last_reply_at),
        unread_count = m.unread_count + o.unread_count,
        taken_over_at = CASE WHEN m.taken_over_at IS NOT NULL THEN m.taken_over_at
                             ELSE o.taken_over_at END,
        taken_over_by = CASE WHEN m.taken_over_at IS NOT NULL THEN m.taken_over_by
                             ELSE o.taken_over_by END,
        created_at = least(m.created_at, o.created_at),
        updated_at = $3
    FROM pairs p
    JOIN conversations o ON o.id = p.other_id
    WHERE m.id = p.master_id
    RETURNING m.id
), dropped AS (
    DELETE FROM conversations c USING pairs p WHERE c.id = p.other_id
    RETURNING c.id
), moved AS (
    UPDATE conversations c SET contact_id = $1, updated_at = $3
    WHERE c.contact_id = $2 AND c.id NOT IN (SELECT other_id FROM pairs)
    RETURNING c.id
)
SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM joined)::int AS joined,
       (SELECT count(*) FROM dropped)::int AS dropped;

-- name: merge_move_history
-- The other contact ($2)'s history becomes the master's ($1): executions in campaigns the master
-- is not in, messages (conversations and replies), log entries, do-not-contact entries,
-- resolved Telegram peers and opportunities the master has no counterpart of. Then the master
-- takes its merged fields and the other is marked merged into it (soft-deleted).
WITH moved_executions AS (
    UPDATE executions e SET contact_id = $1, updated_at = $3
    WHERE e.contact_id = $2
      AND NOT EXISTS (SELECT 1 FROM executions m
                      WHERE m.contact_id = $1 AND m.campaign_id = e.campaign_id)
    RETURNING e.id
), moved_messages AS (
    UPDATE messages SET contact_id = $1 WHERE contact_id = $2 RETURNING id
), moved_logs AS (
    UPDATE execution_logs SET contact_id = $1 WHERE contact_id = $2 RETURNING id
), moved_entries AS (
    UPDATE do_not_contact SET contact_id = $1 WHERE contact_id = $2 RETURNING id
), listed_master AS (
    INSERT INTO do_not_contact (organization_id, user_id, kind, value, reason, source, note,
                                contact_id, added_by, created_at)
    SELECT organization_id, user_id, 'contact', $1::text, reason, source, note, $1, added_by,
           created_at
    FROM do_not_contact WHERE kind = 'contact' AND value = $2::text
    ON CONFLICT (list_id, kind, value) DO NOTHING
    RETURNING id
), moved_peers AS (
    UPDATE telegram_peers p SET contact_id = $1
    WHERE p.contact_id = $2
      AND NOT EXISTS (SELECT 1 FROM telegram_peers q
                      WHERE q.contact_id = $1 AND q.telegram_account_id = p.telegram_account_id)
    RETURNING p.contact_id
), moved_opportunities AS (
    UPDATE opportunities o SET contact_id = $1, updated_at = $3
    WHERE o.contact_id = $2
      AND NOT EXISTS (SELECT 1 FROM opportunities q
                      WHERE q.contact_id = $1 AND q.pipeline_id = o.pipeline_id)
    RETURNING o.id
), master AS (
    UPDATE contacts
    SET first_name = $4, last_name = $5, telegram_username = $6, phone = $7,
        telegram_user_id = $8, company_id = $9, tags = $10, custom_fields = $11, time_zone = $12,
        updated_at = $3
    WHERE id = $1
    RETURNING id
), other AS (
    UPDATE contacts SET deleted_at = $3, merged_into_id = $1, updated_at = $3
    WHERE id = $2
    RETURNING id
)
SELECT (SELECT count(*) FROM moved_executions)::int AS executions,
       (SELECT count(*) FROM moved_messages)::int AS messages,
       (SELECT count(*) FROM master) + (SELECT count(*) FROM other) AS contacts;
