-- The fleet circuit breaker (issue 14, item 4): when most of a context's sending accounts are
-- limited, frozen or cooling down within the last hour, its sending pauses by itself.
--
-- An account's last moment in trouble (entering or leaving limited, frozen or cooldown): the
-- breaker counts an account as in trouble for an hour after it left trouble.
ALTER TABLE telegram_accounts ADD COLUMN troubled_at timestamptz;

-- One row per context: an organization, or a user in personal mode (organization_id NULL). Its
-- own table rather than columns on organizations: personal mode has no organization row, and
-- the scheduler rewrites it on every health change without locking the organization's row
-- (which the API updates). tripped_at NULL: sending is not paused.
CREATE TABLE fleet_breakers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    tripped_at      timestamptz,
    reason          text,
    troubled        integer NOT NULL DEFAULT 0,
    sending         integer NOT NULL DEFAULT 0,
    evaluated_at    timestamptz NOT NULL,
    CONSTRAINT fleet_breakers_context_check CHECK ((organization_id IS NULL) <> (user_id IS NULL)),
    CONSTRAINT fleet_breakers_reason_check CHECK ((tripped_at IS NULL) = (reason IS NULL))
);
CREATE UNIQUE INDEX fleet_breakers_organization_idx ON fleet_breakers (organization_id)
    WHERE organization_id IS NOT NULL;
CREATE UNIQUE INDEX fleet_breakers_user_idx ON fleet_breakers (user_id)
    WHERE user_id IS NOT NULL;
