-- Bulk actions asked for over Kafka (bulk_action.requested, issue 16).

-- name: membership
-- The actor's role in the organization its command names, and the admin view setting.
SELECT m.role, o.admin_view_enabled
FROM memberships m JOIN organizations o ON o.id = m.organization_id
WHERE m.organization_id = $1 AND m.user_id = $2;

-- name: email
SELECT email FROM users WHERE id = $1;

-- name: recorded
-- The action as recorded, for its bulk_action.changed answer; none yet: not recorded.
SELECT * FROM bulk_actions WHERE id = $1;
