-- Bulk actions over contacts (specs 002 and 003) as built.

-- Every action has a name for tracking. `batches` counts the batches released so far; a batch
-- is released and processed in one transaction, so it is never released twice.
ALTER TABLE bulk_actions ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE bulk_actions ADD COLUMN batches integer NOT NULL DEFAULT 0;
ALTER TABLE bulk_actions ADD COLUMN last_batch_at timestamptz;
-- Batches take contacts in id order; the last one taken, so the next batch starts after it
-- instead of stepping over every item already processed.
ALTER TABLE bulk_actions ADD COLUMN last_contact_id uuid;
ALTER TABLE bulk_actions ADD COLUMN error_message text;
-- A restore names the delete action it undoes.
ALTER TABLE bulk_actions ADD COLUMN source_action_id uuid REFERENCES bulk_actions (id);
CREATE INDEX bulk_actions_org_idx ON bulk_actions (organization_id, created_at DESC);

-- What a processed contact needs for later: a deleted contact's campaign memberships, so a
-- restore can bring them back.
ALTER TABLE bulk_action_items ADD COLUMN details jsonb;
CREATE INDEX bulk_action_items_order_idx ON bulk_action_items (bulk_action_id, contact_id)
    WHERE status = 'pending';

-- send_message runs as a one-message campaign of its own, so its sends are paced, health-checked
-- and recorded like any other; such a campaign belongs to its action and is not listed.
ALTER TABLE campaigns ADD COLUMN bulk_action_id uuid REFERENCES bulk_actions (id);

-- export_contacts writes its CSV here chunk by chunk (constant memory on both sides, readable by
-- every API instance); kept 30 days.
CREATE TABLE exports (
    id           uuid PRIMARY KEY REFERENCES bulk_actions (id) ON DELETE CASCADE,
    rows         integer NOT NULL DEFAULT 0,
    bytes        bigint NOT NULL DEFAULT 0,
    chunks       integer NOT NULL DEFAULT 0,
    completed_at timestamptz,
    expires_at   timestamptz NOT NULL
);
CREATE TABLE export_chunks (
    export_id uuid NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (export_id, seq)
);
