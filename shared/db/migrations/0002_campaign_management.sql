-- Campaign management: removing contacts from a campaign, account health as the sender's state
-- machine names it, and the searches of the campaign and contact lists.

-- Spec 001: removing contacts soft-deletes their executions; statistics and logs keep them.
ALTER TABLE executions ADD COLUMN deleted_at timestamptz;

-- Health states: active, warming, cooldown (until cooldown_until), limited, disconnected,
-- auth_lost, banned. An account nobody has checked yet is disconnected.
ALTER TABLE telegram_accounts DROP CONSTRAINT telegram_accounts_health_status_check;
UPDATE telegram_accounts
SET health_status = CASE health_status
    WHEN 'unknown' THEN 'disconnected'
    WHEN 'healthy' THEN 'active'
    WHEN 'restricted' THEN 'limited'
    WHEN 'unauthorized' THEN 'auth_lost'
    ELSE health_status
END;
ALTER TABLE telegram_accounts
    ALTER COLUMN health_status SET DEFAULT 'disconnected',
    ADD CONSTRAINT telegram_accounts_health_status_check
        CHECK (health_status IN ('active', 'warming', 'cooldown', 'limited', 'disconnected',
                                 'auth_lost', 'banned'));

-- The campaign list filters by creator inside an organization.
CREATE INDEX campaigns_org_creator_idx ON campaigns (organization_id, created_by, created_at DESC);
-- Contacts of a personal workspace, newest first.
DROP INDEX contacts_owner_idx;
CREATE INDEX contacts_owner_idx ON contacts (owner_user_id, created_at)
    WHERE organization_id IS NULL AND deleted_at IS NULL;
