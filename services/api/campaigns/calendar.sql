-- name: calendar
-- Campaigns with a launch time in the caller's view: scheduled and recurring ones, and those
-- launched now or by hand; drafts have no launch time (spec 004).
SELECT id, name, description, status, launch_type, scheduled_at, recurrence, timezone,
       launched_at
FROM campaigns c
WHERE c.organization_id IS NOT DISTINCT FROM $1
  AND ($2::uuid IS NULL OR c.created_by = $2)
  AND c.deleted_at IS NULL
  AND c.status <> 'draft'
  AND ((c.launch_type = 'schedule' AND c.scheduled_at >= $3 AND c.scheduled_at < $4)
       OR (c.launch_type = 'recurring' AND c.status IN ('scheduled', 'active'))
       OR (c.launch_type IN ('now', 'manual') AND c.launched_at >= $3 AND c.launched_at < $4))
ORDER BY c.id
LIMIT 5000;
