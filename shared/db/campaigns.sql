-- Reads about campaigns that more than one service needs (the API's views, the scheduler's
-- launch checks). Writes stay with the owning service.

-- name: readiness
-- What a launch needs besides the campaign's own state, for each campaign in $1: its account's
-- health (null when it has none, or a deleted one) and whether any contact is in it.
SELECT c.id, a.health_status AS account_health,
       EXISTS (SELECT 1 FROM executions e
               WHERE e.campaign_id = c.id AND e.deleted_at IS NULL) AS has_contacts,
       c.flow
FROM campaigns c
LEFT JOIN telegram_accounts a ON a.id = c.telegram_account_id AND a.deleted_at IS NULL
WHERE c.id = ANY($1::uuid[]);
