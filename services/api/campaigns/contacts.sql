-- name: executions
-- The contacts tab: one row per contact in the campaign, with its execution's status; $7 only
-- a company's contacts.
SELECT e.id AS execution_id, e.contact_id, e.status, e.current_node_id, e.next_execution_at,
       e.error_message, e.created_at, e.updated_at, e.completed_at,
       c.first_name, c.last_name, c.telegram_username, c.phone, c.company_id
FROM executions e
JOIN contacts c ON c.id = e.contact_id
WHERE e.campaign_id = $1
  AND e.deleted_at IS NULL
  AND ($2::text IS NULL OR e.status = $2)
  AND ($3::text IS NULL OR concat_ws(' ', c.first_name, c.last_name, c.telegram_username)
                           ILIKE '%' || $3 || '%')
  AND ($4::timestamptz IS NULL OR (e.created_at, e.id) > ($4, $5::uuid))
  AND ($7::uuid IS NULL OR c.company_id = $7)
ORDER BY e.created_at, e.id
LIMIT $6;
