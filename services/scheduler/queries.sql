-- name: lock_campaign
-- The campaign a lifecycle command acts on, locked until the command's transaction ends.
SELECT id, organization_id, created_by, status, enabled, launch_type, deleted_at
FROM campaigns
WHERE id = $1
FOR UPDATE;

-- name: caller_context
-- The actor's role in the organization named by the command (null in personal mode) and the
-- organization's admin view setting.
SELECT m.role, o.admin_view_enabled
FROM memberships m
JOIN organizations o ON o.id = m.organization_id
WHERE m.organization_id = $1 AND m.user_id = $2;

-- name: set_launched
UPDATE campaigns
SET status = $2, launched_at = $3, updated_at = $3
WHERE id = $1;
