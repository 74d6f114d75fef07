-- Test sends (account.test_send, docs/campaigns.md "Test send"): a campaign's send step rendered
-- for one contact and sent to the account's own Saved Messages. Only the campaign's log is
-- written: no execution, message record or statistic.

-- name: campaign
SELECT id, organization_id, created_by, status, enabled, launch_type, deleted_at,
       telegram_account_id, flow
FROM campaigns WHERE id = $1;

-- name: caller_context
-- The actor's role in the organization named by the command (null in personal mode) and the
-- organization's admin view setting (as the scheduler reads it for campaign commands).
SELECT m.role, o.admin_view_enabled
FROM memberships m
JOIN organizations o ON o.id = m.organization_id
WHERE m.organization_id = $1 AND m.user_id = $2;

-- name: lock_account
-- The campaign's account, locked: test sends of one account are counted and sent one at a time.
SELECT id, session_kind, simulation, health_status, cooldown_until, deleted_at
FROM telegram_accounts WHERE id = $1
FOR UPDATE;

-- name: contact
-- The contact, if it is in the campaign's organization ($2; in personal mode the actor's own,
-- $3) and not deleted.
SELECT id, first_name, last_name, telegram_username, phone, telegram_user_id, custom_fields
FROM contacts
WHERE id = $1 AND deleted_at IS NULL
  AND organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR owner_user_id = $3);

-- name: attachment
SELECT id, kind, filename, content_type, data FROM attachments WHERE id = $1;

-- name: recent
-- When the account's test sends since $2 went (from the logs of the campaigns it sends for).
SELECT l.created_at
FROM campaigns c
JOIN execution_logs l ON l.campaign_id = c.id
WHERE c.telegram_account_id = $1 AND l.created_at > $2
  AND l.event IN ('test_sent', 'test_send_failed');

-- name: log
INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                            node_type, event, status, message, details, created_at)
SELECT $1, NULL, c.id, log_contact_text(c.first_name, c.last_name, c.telegram_username), $3,
       'send_message', $4, $5, $6, $7, $8
FROM contacts c WHERE c.id = $2;
