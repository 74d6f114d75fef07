-- Shared by steps.py (a step) and updates.py (a late answer moves an execution on): both hand
-- the row to steps.load, so one query keeps its shape. Listed in tests/shared/db/test_queries.py.

-- name: lock_execution
-- An execution with what a step needs: its campaign's flow and settings, the account, and the
-- contact's ways of being reached. Locked for the step.
SELECT e.id, e.campaign_id, e.contact_id, e.status, e.current_node_id, e.next_execution_at,
       e.lease_until, e.variant, e.context, e.started_at,
       c.flow, c.settings, c.timezone, c.status AS campaign_status, c.enabled AS campaign_enabled,
       c.deleted_at AS campaign_deleted_at, c.telegram_account_id AS account_id,
       ct.telegram_username, ct.phone, ct.telegram_user_id, ct.tags AS contact_tags,
       ct.custom_fields, ct.first_name, ct.last_name, ct.deleted_at AS contact_deleted_at,
       do_not_contact_listed(ct.organization_id, ct.owner_user_id, ct.id, ct.telegram_user_id,
                             ct.telegram_username, ct.phone) AS do_not_contact
FROM executions e
JOIN campaigns c ON c.id = e.campaign_id
JOIN contacts ct ON ct.id = e.contact_id
WHERE e.id = $1
FOR UPDATE OF e;
