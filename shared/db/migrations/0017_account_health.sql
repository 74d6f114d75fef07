-- Issue 14, item 4: health that tells the truth. Two states: frozen (help.getAppConfig's
-- freeze, FROZEN_METHOD_INVALID: no sends at all) and session_conflict (AUTH_KEY_DUPLICATED:
-- the key is used from two places; nothing uses it until a person logs in again). And what the
-- sender's check needs to ask on a backoff rather than every interval: when the account is
-- next due (next_check_at; NULL: the regular interval), how many checks in a row found it
-- limited, frozen or unreachable (check_streak), the date Telegram gave for the end of a limit
-- or freeze (health_until) and a freeze's appeal link (appeal_url).
ALTER TABLE telegram_accounts DROP CONSTRAINT telegram_accounts_health_status_check;
ALTER TABLE telegram_accounts
    ADD CONSTRAINT telegram_accounts_health_status_check
        CHECK (health_status IN ('active', 'warming', 'cooldown', 'limited', 'frozen',
                                 'disconnected', 'auth_lost', 'session_conflict', 'banned')),
    ADD COLUMN next_check_at timestamptz,
    ADD COLUMN check_streak integer NOT NULL DEFAULT 0,
    ADD COLUMN health_until timestamptz,
    ADD COLUMN appeal_url text;
