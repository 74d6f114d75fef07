-- The execution engine: claims with a lease, send records written before the network call,
-- and the simulated Telegram's behaviour per account.

-- A claimed execution carries a lease; a claim whose lease ran out is claimed (and emitted)
-- again, so a lost due event delays work but loses none.
ALTER TABLE executions ADD COLUMN lease_until timestamptz;

-- One send record per send of a node: its key is unique, so a redelivered due event finds the
-- record instead of sending again. 'queued' means written, not yet confirmed by Telegram;
-- 'unknown' means a crash left it unconfirmed and Telegram could not tell.
ALTER TABLE messages ADD COLUMN send_key text;
ALTER TABLE messages ADD COLUMN random_id bigint;
CREATE UNIQUE INDEX messages_send_key_idx ON messages (send_key);
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('queued', 'sent', 'delivered', 'read', 'failed', 'received', 'unknown'));

-- How the simulator behaves for this account and its contacts (docs/engine.md), the account's
-- pacing settings (defaults in shared/domain/pacing.py), and when it last sent.
ALTER TABLE telegram_accounts ADD COLUMN simulation jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE telegram_accounts ADD COLUMN pacing jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE telegram_accounts ADD COLUMN last_send_at timestamptz;
-- The day of the account's last flood error: its budget of new peers is cut for that day.
ALTER TABLE telegram_accounts ADD COLUMN flood_on date;

-- The simulated Telegram's own memory (what a real server would remember): every message it
-- accepted, by the sending account and the client's random_id, so a repeated random_id is
-- recognised, and replies and reads can be played back on time. Only the simulator touches it.
CREATE TABLE simulator_messages (
    account_id      uuid NOT NULL,
    random_id       bigint NOT NULL,
    message_id      bigint GENERATED ALWAYS AS IDENTITY,
    peer            text NOT NULL,
    body            text NOT NULL,
    sent_at         timestamptz NOT NULL,
    read_at         timestamptz,
    reply_at        timestamptz,
    read_reported   boolean NOT NULL DEFAULT false,
    reply_reported  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (account_id, random_id)
);
CREATE INDEX simulator_messages_pending_idx ON simulator_messages (account_id, sent_at)
    WHERE NOT (read_reported AND reply_reported);
