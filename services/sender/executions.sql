-- The executions a step or an answer locks, in the shape staging.load reads: the columns
-- shared/db/rows.py's ExecutionRow holds.

-- name: lock_executions
-- Executions with what a step needs: their campaign's flow and settings, the account, and the
-- contact's ways of being reached, and what reach needs to refuse a send (deleted, listed,
-- recently contacted: with the organization's recontact_after_days set, when another execution
-- last messaged the person and whether this one has, both through messages_contact_sent_idx
-- (a contact has few messages), both skipped while the setting is off), and the contact's
-- opportunities' stages by pipeline (opportunities_contact_idx; for set_opportunity_stage and
-- the opportunity_stage condition). Locked for the step, in id order ($1 the executions, $2 the
-- leases their due events carry): an execution whose lease is not its event's (a stale event:
-- its claim ran out and it was claimed again) is neither returned nor locked; a null lease
-- always matches (an answer, a reply, or one execution: executions.lock). The flow and settings
-- come as text: they are the same for a campaign's executions, so they are decoded (and
-- checked) once per campaign.
SELECT e.id, e.campaign_id, e.contact_id, e.status, e.current_node_id, e.next_execution_at,
       e.lease_until, e.variant, e.context, e.started_at, e.taken_over_at,
       c.flow::text AS flow_json, c.settings::text AS settings_json, c.timezone,
       c.status AS campaign_status, c.enabled AS campaign_enabled,
       c.deleted_at AS campaign_deleted_at, c.telegram_account_id AS account_id,
       ct.telegram_username, ct.phone, ct.telegram_user_id, ct.tags AS contact_tags,
       ct.custom_fields, ct.first_name, ct.last_name, ct.deleted_at AS contact_deleted_at,
       ct.time_zone AS contact_time_zone,
       c.created_by AS campaign_created_by,
       (SELECT jsonb_object_agg(o.pipeline_id::text, o.stage_id::text) FROM opportunities o
        WHERE o.contact_id = ct.id) AS opportunity_stages,
       do_not_contact_listed(ct.organization_id, ct.owner_user_id, ct.id, ct.telegram_user_id,
                             ct.telegram_username, ct.phone) AS do_not_contact,
       r.days AS recontact_after_days,
       CASE WHEN r.days IS NOT NULL THEN
           (SELECT m.sent_at FROM messages m
            WHERE m.contact_id = ct.id AND m.direction = 'outgoing' AND m.sent_at IS NOT NULL
              AND m.status IN ('sent', 'delivered', 'read')
              AND m.execution_id IS DISTINCT FROM e.id
            ORDER BY m.sent_at DESC LIMIT 1) END AS last_messaged_elsewhere,
       r.days IS NOT NULL AND EXISTS (
           SELECT 1 FROM messages m
           WHERE m.contact_id = ct.id AND m.execution_id = e.id
             AND m.direction = 'outgoing' AND m.sent_at IS NOT NULL
       ) AS messaged_here
FROM executions e
JOIN campaigns c ON c.id = e.campaign_id
JOIN contacts ct ON ct.id = e.contact_id
LEFT JOIN LATERAL (SELECT (o.settings ->> 'recontact_after_days')::integer AS days
                   FROM organizations o WHERE o.id = ct.organization_id) r ON true
WHERE e.id = ANY($1::uuid[])
  AND EXISTS (SELECT 1 FROM unnest($1::uuid[], $2::timestamptz[]) AS d (id, lease_until)
              WHERE d.id = e.id AND (d.lease_until IS NULL OR d.lease_until = e.lease_until))
ORDER BY e.id
FOR UPDATE OF e;
