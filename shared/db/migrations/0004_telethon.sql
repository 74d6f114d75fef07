-- Telethon accounts: the peers each account has resolved, and the replies and reads Telegram
-- pushed to it.

-- A new account ramps its daily budget up while it warms (shared/domain/pacing.py); a health
-- check that finds it well returns it to warming, not active, until the ramp is done.
ALTER TABLE telegram_accounts ADD COLUMN warm_up boolean NOT NULL DEFAULT false;

-- Access hashes are per account (TELEGRAM.md): a contact resolved by one account must be
-- resolved again by another. peer_key is what was resolved (username, phone or user id); a
-- contact whose key changed is resolved again.
CREATE TABLE telegram_peers (
    telegram_account_id uuid NOT NULL REFERENCES telegram_accounts (id) ON DELETE CASCADE,
    contact_id          uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    peer_key            text NOT NULL,
    user_id             bigint NOT NULL,
    access_hash         bigint NOT NULL,
    resolved_at         timestamptz NOT NULL,
    PRIMARY KEY (telegram_account_id, contact_id)
);
CREATE INDEX telegram_peers_user_idx ON telegram_peers (telegram_account_id, user_id);

-- What Telegram pushed (NewMessage, MessageRead) or the reconciliation found in a dialog,
-- written as it arrives and applied by the sender's sweep. A reply is unique per account and
-- message id, so a reply seen both live and in the history is recorded once.
CREATE TABLE telegram_updates (
    id                  bigserial PRIMARY KEY,
    telegram_account_id uuid NOT NULL REFERENCES telegram_accounts (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('reply', 'read')),
    peer_user_id        bigint NOT NULL,
    -- the reply's own id, or for a read the highest of our message ids read
    telegram_message_id bigint NOT NULL,
    body                text NOT NULL DEFAULT '',
    received_at         timestamptz NOT NULL,
    applied_at          timestamptz
);
CREATE UNIQUE INDEX telegram_updates_reply_idx
    ON telegram_updates (telegram_account_id, peer_user_id, telegram_message_id)
    WHERE kind = 'reply';
CREATE INDEX telegram_updates_pending_idx ON telegram_updates (id) WHERE applied_at IS NULL;
