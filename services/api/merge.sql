-- Merging contacts (issue 19, item 1): the pair's check, and the candidate duplicates.

-- name: contacts
-- These contacts ($1) in the caller's context ($2 organization, or $3 the personal owner),
-- live.
SELECT id, owner_user_id, first_name, last_name, telegram_username, phone, telegram_user_id,
       company_id, time_zone
FROM contacts
WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
  AND organization_id IS NOT DISTINCT FROM $2
  AND ($2::uuid IS NOT NULL OR owner_user_id = $3);

-- name: duplicates
-- Pairs of live contacts in the caller's context that share a Telegram user id, a phone (stored
-- normalised, +digits) or a username (any case), in (first_id, second_id) order after the
-- position ($3, $4); $5 the page's LIMIT. A pair matching in several ways is listed once.
WITH scope AS (
    SELECT id, owner_user_id, telegram_user_id, phone, lower(telegram_username) AS username,
           created_at
    FROM contacts
    WHERE deleted_at IS NULL
      AND organization_id IS NOT DISTINCT FROM $1
      AND ($1::uuid IS NOT NULL OR owner_user_id = $2)
), matches AS (
    SELECT a.id AS first_id, b.id AS second_id, 'telegram_user_id' AS matched_on
    FROM scope a JOIN scope b ON a.telegram_user_id = b.telegram_user_id AND a.id < b.id
    UNION ALL
    SELECT a.id, b.id, 'phone'
    FROM scope a JOIN scope b ON a.phone = b.phone AND a.id < b.id
    UNION ALL
    SELECT a.id, b.id, 'telegram_username'
    FROM scope a JOIN scope b ON a.username = b.username AND a.id < b.id
)
SELECT m.first_id, m.second_id, array_agg(m.matched_on ORDER BY m.matched_on) AS matched_on
FROM matches m
WHERE $3::uuid IS NULL OR (m.first_id, m.second_id) > ($3::uuid, $4::uuid)
GROUP BY m.first_id, m.second_id
ORDER BY m.first_id, m.second_id
LIMIT $5;

-- name: insert_action
-- The merge's bulk action, released all at once by the scheduler (as routes.sql's insert).
INSERT INTO bulk_actions (id, organization_id, created_by, name, action, mode, selection, params,
                          batch_size, interval_seconds, allowed_days, window_start, window_end,
                          timezone, start_at, next_batch_at, source_action_id, created_at,
                          updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)
RETURNING id;
