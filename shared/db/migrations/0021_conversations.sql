-- Issue 15, item 6: the unified inbox. One conversation per (account, contact), kept up to date
-- in the transaction that records a send (services/sender/answers.sql mark_sent_many) or a
-- reply (services/sender/updates.sql record_reply); docs/inbox.md. A conversation taken over
-- by a person holds its execution (executions.taken_over_at): dispatch does not claim it and
-- the sender does not step it, until it is released.
CREATE TABLE conversations (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    telegram_account_id uuid NOT NULL REFERENCES telegram_accounts (id) ON DELETE CASCADE,
    contact_id          uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    campaign_id         uuid REFERENCES campaigns (id) ON DELETE SET NULL,
    execution_id        uuid REFERENCES executions (id) ON DELETE SET NULL,
    last_message_id     uuid,
    last_direction      text NOT NULL CHECK (last_direction IN ('outgoing', 'incoming')),
    last_body           text NOT NULL,
    last_message_at     timestamptz NOT NULL,
    last_reply_at       timestamptz,
    unread_count        integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    taken_over_at       timestamptz,
    taken_over_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (telegram_account_id, contact_id)
);
CREATE INDEX conversations_recent_idx ON conversations (last_message_at DESC, id DESC);
CREATE INDEX conversations_campaign_idx ON conversations (campaign_id);

ALTER TABLE executions ADD COLUMN taken_over_at timestamptz;

-- The conversations of the messages recorded before this migration.
INSERT INTO conversations (telegram_account_id, contact_id, campaign_id, execution_id,
                           last_message_id, last_direction, last_body, last_message_at,
                           last_reply_at, unread_count)
SELECT DISTINCT ON (m.telegram_account_id, m.contact_id)
       m.telegram_account_id, m.contact_id, m.campaign_id, m.execution_id, m.id, m.direction,
       m.body, m.sent_at,
       (SELECT max(r.sent_at) FROM messages r
        WHERE r.telegram_account_id = m.telegram_account_id AND r.contact_id = m.contact_id
          AND r.direction = 'incoming'),
       0
FROM messages m
WHERE m.telegram_account_id IS NOT NULL AND m.sent_at IS NOT NULL
  AND (m.direction = 'incoming' OR m.status IN ('sent', 'delivered', 'read'))
ORDER BY m.telegram_account_id, m.contact_id, m.sent_at DESC, m.id DESC;
