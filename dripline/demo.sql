-- name: seed
-- Demo data for `dripline run`, once per demo user: a simulated account, three contacts and a
-- draft campaign holding them, ready to launch. $2 is the flow.
WITH fresh AS (
    SELECT $1::uuid AS user_id
    WHERE NOT EXISTS (SELECT 1 FROM campaigns WHERE created_by = $1)
), account AS (
    INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status)
    SELECT user_id, 'Demo account (simulated)', 'simulated', 'active' FROM fresh
    RETURNING id, owner_user_id
), people AS (
    INSERT INTO contacts (owner_user_id, telegram_username, first_name, last_name, tags)
    SELECT a.owner_user_id, p.username, p.first_name, p.last_name, ARRAY['demo']
    FROM account a,
         (VALUES ('ada_demo', 'Ada', 'Lovelace'), ('alan_demo', 'Alan', 'Turing'),
                 ('grace_demo', 'Grace', 'Hopper')) AS p (username, first_name, last_name)
    RETURNING id, first_name, last_name, telegram_username
), demo AS (
    INSERT INTO campaigns (created_by, name, description, telegram_account_id, flow)
    SELECT owner_user_id, 'Demo campaign', 'Seeded by dripline run; launch it.', id, $2
    FROM account
    RETURNING id, telegram_account_id
)
INSERT INTO executions (campaign_id, contact_id, telegram_account_id, next_execution_at, context)
SELECT d.id, p.id, d.telegram_account_id, now(),
       jsonb_build_object('contact', jsonb_build_object(
           'first_name', p.first_name, 'last_name', p.last_name,
           'telegram_username', p.telegram_username))
FROM demo d, people p
RETURNING campaign_id;
