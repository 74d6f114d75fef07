-- The API's checks before it asks the sender for a test send (POST
-- /campaign-flows/{id}/test-send); the sender checks the same again when it applies the command.

-- name: account
SELECT health_status, cooldown_until, deleted_at IS NOT NULL AS deleted
FROM telegram_accounts WHERE id = $1;

-- name: contact
-- The contact, if it is in the campaign's organization ($2) and the caller's context: a member
-- of that organization ($3 the caller's organization must be it), or in personal mode the
-- caller's own ($4).
SELECT id, first_name, last_name, telegram_username, phone, custom_fields
FROM contacts
WHERE id = $1 AND deleted_at IS NULL
  AND organization_id IS NOT DISTINCT FROM $2
  AND organization_id IS NOT DISTINCT FROM $3
  AND ($2::uuid IS NOT NULL OR owner_user_id = $4);
