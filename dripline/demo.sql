-- Demo data for `dripline run`, seeded once per demo user: an organization, two simulated
-- Telegram accounts (paced for a demo, not for real accounts), 300 contacts, and a draft
-- campaign holding them whose flow branches on a reply. $2 is the flow, $3 the simulation.
-- No event announces the seeded executions, so `statistics` then counts the campaign's
-- statistics as the stats service would (else its first reconciliation finds them drifted).

-- name: organization
SELECT o.id FROM organizations o
JOIN memberships m ON m.organization_id = o.id AND m.user_id = $1
WHERE o.name = 'Demo organization';

-- name: seed
WITH org AS (
    INSERT INTO organizations (name, admin_view_enabled)
    SELECT 'Demo organization', true
    WHERE NOT EXISTS (SELECT 1 FROM organizations o
                      JOIN memberships m ON m.organization_id = o.id AND m.user_id = $1
                      WHERE o.name = 'Demo organization')
    RETURNING id
), owner AS (
    INSERT INTO memberships (organization_id, user_id, role)
    SELECT id, $1, 'owner' FROM org
    RETURNING organization_id
), accounts AS (
    INSERT INTO telegram_accounts (organization_id, owner_user_id, display_name, session_kind,
                                   health_status, simulation, pacing, daily_quota)
    SELECT org.id, $1, a.name, 'simulated', 'active', $3,
           '{"min_gap_s": 0.5, "jitter_s": 0.5, "daily_new_peers": 1000}'::jsonb, 1000
    FROM org, (VALUES ('Demo sales (simulated)'), ('Demo support (simulated)')) AS a (name)
    RETURNING id, organization_id, display_name
), people AS (
    INSERT INTO contacts (organization_id, owner_user_id, telegram_username, first_name,
                          last_name, tags)
    SELECT org.id, $1, format('demo_%s', lpad(n::text, 4, '0')),
           (ARRAY['Ada', 'Alan', 'Grace', 'Linus', 'Barbara', 'Ken'])[1 + n % 6],
           (ARRAY['Lovelace', 'Turing', 'Hopper', 'Torvalds', 'Liskov', 'Thompson'])[1 + n % 6],
           ARRAY['demo']
    FROM org, generate_series(1, 300) AS n
    RETURNING id, organization_id, first_name, last_name, telegram_username
), demo AS (
    INSERT INTO campaigns (organization_id, created_by, name, description, telegram_account_id,
                           flow, settings)
    SELECT a.organization_id, $1, 'Demo campaign',
           'Seeded by dripline run: launch it and watch its contacts and logs.', a.id, $2,
           '{"response_handling": {"stop_on_reply": false}}'::jsonb
    FROM accounts a WHERE a.display_name LIKE 'Demo sales%'
    RETURNING id, telegram_account_id
)
INSERT INTO executions (campaign_id, contact_id, telegram_account_id, next_execution_at, context)
SELECT d.id, p.id, d.telegram_account_id, now(),
       jsonb_build_object('contact', jsonb_build_object(
           'first_name', p.first_name, 'last_name', p.last_name,
           'telegram_username', p.telegram_username))
FROM demo d, people p
RETURNING campaign_id;

-- name: statistics
-- The seeded campaign ($1)'s statistics: it has no stored row yet, so refresh_statistics
-- counts it whole, as the stats service does for a campaign's first event.
SELECT refresh_statistics('{}', '{}', ARRAY[$1::uuid], ARRAY[NULL::timestamptz], now());
