-- Attachments (issue 16, item 3): a photo or document uploaded once through POST /attachments
-- and named by send steps (flow nodes' attachment_id). The bytes live here, bounded by
-- DRIPLINE_MAX_ATTACHMENT_BYTES; organization_id is NULL for a personal-mode user's own.
CREATE TABLE attachments (
    id              uuid PRIMARY KEY,
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id   uuid NOT NULL REFERENCES users (id),
    kind            text NOT NULL CHECK (kind IN ('photo', 'document')),
    content_type    text NOT NULL,
    filename        text NOT NULL,
    size_bytes      integer NOT NULL CHECK (size_bytes > 0),
    sha256          text NOT NULL,
    data            bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_organization_idx ON attachments (organization_id, created_at);

-- The simulated Telegram records the attachment a message carried.
ALTER TABLE simulator_messages ADD COLUMN attachment_id uuid;
