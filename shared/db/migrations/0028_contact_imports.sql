-- Imports as a tracked bulk action (issue 19, item 4). An upload (POST /imports) is streamed into
-- PostgreSQL one row per record, so any API instance accepts it, any scheduler applies it, and
-- no file on one machine's disk is needed; an import_contacts bulk action then applies its rows
-- batch by batch and records each row's outcome on the row.

ALTER TABLE bulk_actions DROP CONSTRAINT bulk_actions_action_check;
ALTER TABLE bulk_actions ADD CONSTRAINT bulk_actions_action_check
    CHECK (action IN ('add_to_campaign', 'send_message', 'add_tags', 'remove_tags',
                      'delete_contacts', 'restore_contacts', 'export_contacts',
                      'add_to_company', 'remove_from_company', 'upsert_opportunities',
                      'merge_contacts', 'import_contacts'));

CREATE TABLE contact_imports (
    id              uuid PRIMARY KEY,
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    created_by      uuid NOT NULL REFERENCES users (id),
    format          text NOT NULL CHECK (format IN ('csv', 'jsonl')),
    columns         text[] NOT NULL DEFAULT '{}',
    rows            integer NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    -- The import_contacts action that applies it (one at most).
    bulk_action_id  uuid UNIQUE REFERENCES bulk_actions (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL
);
CREATE INDEX contact_imports_creator_idx ON contact_imports (created_by, created_at);

-- One record of the upload: `line` is where it starts in the file (the CSV header is line 1).
-- `data` holds its cells (CSV: column -> text) or its object (JSONL); `parse_error` what made
-- it unreadable. Its outcome is recorded here, as bulk_action_items records a contact's.
CREATE TABLE contact_import_rows (
    import_id     uuid NOT NULL REFERENCES contact_imports (id) ON DELETE CASCADE,
    line          integer NOT NULL,
    data          jsonb,
    parse_error   text,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'succeeded', 'skipped', 'failed')),
    error_code    text,
    error_message text,
    contact_id    uuid REFERENCES contacts (id),
    details       jsonb,
    batch_number  integer,
    processed_at  timestamptz,
    PRIMARY KEY (import_id, line)
);
CREATE INDEX contact_import_rows_pending_idx ON contact_import_rows (import_id, line)
    WHERE status = 'pending';
CREATE INDEX contact_import_rows_contact_idx ON contact_import_rows (import_id, contact_id)
    WHERE contact_id IS NOT NULL;

-- An import finds existing contacts by username and phone, as contact.upsert does.
CREATE INDEX contacts_username_idx ON contacts (lower(telegram_username))
    WHERE deleted_at IS NULL AND telegram_username IS NOT NULL;
CREATE INDEX contacts_phone_idx ON contacts (phone)
    WHERE deleted_at IS NULL AND phone IS NOT NULL;
