-- Commands about a Telegram account (dripline.account.commands), answered on
-- dripline.account.events.

-- name: account_to_check
-- The account, locked (as the periodic check locks it), if actor $3 may see it in context $2:
-- its personal owner, or a member of its organization. The columns accounts.check reads.
SELECT a.id, a.session_kind, a.simulation, a.health_status, a.cooldown_until, a.pacing,
       a.daily_quota, a.created_at, a.warm_up, a.check_streak
FROM telegram_accounts a
WHERE a.id = $1 AND a.deleted_at IS NULL
  AND a.organization_id IS NOT DISTINCT FROM $2
  AND CASE WHEN $2::uuid IS NULL THEN a.owner_user_id = $3
           ELSE EXISTS (SELECT 1 FROM memberships m
                        WHERE m.organization_id = $2 AND m.user_id = $3) END
FOR UPDATE OF a;

-- name: health
-- The account's health as the check left it, for the answer.
SELECT health_status, health_detail FROM telegram_accounts WHERE id = $1;
