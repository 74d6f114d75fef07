-- Organizations and their members, owned by the API.

-- name: insert
INSERT INTO organizations (name, admin_view_enabled) VALUES ($1, $2) RETURNING *;

-- name: add_member
INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
RETURNING created_at;

-- name: get_for_member
-- fleet_paused: why the fleet breaker paused the organization's sending (NULL: it did not).
SELECT o.*, m.role,
       (SELECT b.reason FROM fleet_breakers b
        WHERE b.organization_id = o.id AND b.tripped_at IS NOT NULL) AS fleet_paused
FROM organizations o
JOIN memberships m ON m.organization_id = o.id AND m.user_id = $2
WHERE o.id = $1;

-- name: list_for_user
SELECT o.*, m.role,
       (SELECT b.reason FROM fleet_breakers b
        WHERE b.organization_id = o.id AND b.tripped_at IS NOT NULL) AS fleet_paused
FROM organizations o
JOIN memberships m ON m.organization_id = o.id
WHERE m.user_id = $1
ORDER BY o.created_at, o.id;

-- name: update
-- $4: replace the opt-out phrases with $5 (null: back to the defaults); $6: set
-- recontact_after_days to $7 (null: off); $8: set the fleet breaker's policy to $9 (null: back
-- to the defaults). The sender reads the first two from settings, the scheduler the third.
UPDATE organizations
SET name = $2, admin_view_enabled = $3, updated_at = now(),
    settings = (((CASE WHEN NOT $4::boolean THEN settings
                       WHEN $5::jsonb IS NULL THEN settings - 'opt_out_phrases'
                       ELSE jsonb_set(settings, '{opt_out_phrases}', $5::jsonb) END)
                 - CASE WHEN $6::boolean THEN 'recontact_after_days' ELSE '' END
                 || CASE WHEN $6::boolean AND $7::integer IS NOT NULL
                         THEN jsonb_build_object('recontact_after_days', $7::integer)
                         ELSE '{}'::jsonb END)
                - CASE WHEN $8::boolean THEN 'fleet_breaker' ELSE '' END)
               || CASE WHEN $8::boolean AND $9::jsonb IS NOT NULL
                       THEN jsonb_build_object('fleet_breaker', $9::jsonb)
                       ELSE '{}'::jsonb END
WHERE id = $1
RETURNING *,
          (SELECT b.reason FROM fleet_breakers b
           WHERE b.organization_id = organizations.id AND b.tripped_at IS NOT NULL)
          AS fleet_paused;

-- name: members
SELECT m.user_id, u.email, u.name, m.role, m.created_at
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.organization_id = $1
ORDER BY m.created_at, m.user_id;

-- name: member
SELECT m.user_id, u.email, u.name, m.role, m.created_at
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.organization_id = $1 AND m.user_id = $2;

-- name: lock_owners
-- The owners, locked, so two requests cannot each remove "the other" last owner.
SELECT user_id FROM memberships WHERE organization_id = $1 AND role = 'owner' FOR UPDATE;

-- name: set_role
UPDATE memberships SET role = $3 WHERE organization_id = $1 AND user_id = $2;

-- name: remove_member
DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2;
