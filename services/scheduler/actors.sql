-- name: caller_context
-- The actor's role in the organization named by the command (null in personal mode) and the
-- organization's admin view setting.
SELECT m.role, o.admin_view_enabled
FROM memberships m
JOIN organizations o ON o.id = m.organization_id
WHERE m.organization_id = $1 AND m.user_id = $2;
