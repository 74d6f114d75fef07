-- Phone logins in progress (issue 14, item 1): each step is a separate request, possibly on
-- another process, and Telegram accepts the code only on the auth key that asked for it, so the
-- pending login (that key, the phone_code_hash) is kept here, sealed like a session
-- (shared/crypto.py), until it finishes or expires. Written by the sender, read by the API.
CREATE TABLE telegram_logins (
    id                  uuid PRIMARY KEY,
    organization_id     uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id       uuid NOT NULL REFERENCES users (id),
    -- the account it creates, or the auth_lost one it logs in again in place
    telegram_account_id uuid NOT NULL,
    relogin             boolean NOT NULL,
    phone               text NOT NULL,
    display_name        text NOT NULL,
    -- the caller's own API credentials, when given (the hash sealed)
    api_id              integer,
    api_hash_secret     text,
    status              text NOT NULL
                        CHECK (status IN ('code_sent', 'password_needed', 'logged_in', 'failed')),
    -- the sealed PendingLogin; NULL once the login finished, failed or expired
    pending_secret      text,
    failure_code        text,
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_logins_pending_idx ON telegram_logins (expires_at)
    WHERE pending_secret IS NOT NULL;
