-- Companies, pipelines and opportunities (issue 19, items 2 and 3; spec 003's "Manage
-- Companies" and "Manage Opportunities"). Like contacts, they belong to an organization (every
-- member shares them) or, in personal mode, to their owner alone. owner_user_id is who made
-- them: deleting another member's company or pipeline is for owners and admins.

CREATE TABLE companies (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id    uuid NOT NULL REFERENCES users (id),
    name             text NOT NULL,
    domain           text,
    telegram_channel text,
    custom_fields    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX companies_org_idx ON companies (organization_id, created_at);
CREATE INDEX companies_owner_idx ON companies (owner_user_id, created_at)
    WHERE organization_id IS NULL;

-- A contact belongs to at most one company; deleting the company leaves its contacts alone.
ALTER TABLE contacts ADD COLUMN company_id uuid REFERENCES companies (id) ON DELETE SET NULL;
CREATE INDEX contacts_company_idx ON contacts (company_id, created_at)
    WHERE company_id IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE pipelines (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id   uuid NOT NULL REFERENCES users (id),
    name            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipelines_org_idx ON pipelines (organization_id, created_at);

-- Ordered by position; a stage keeps its id across renames and reorders, so opportunities and
-- the stage-change events name a stable stage.
CREATE TABLE pipeline_stages (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pipeline_id uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name        text NOT NULL,
    position    integer NOT NULL CHECK (position >= 0)
);
CREATE INDEX pipeline_stages_pipeline_idx ON pipeline_stages (pipeline_id, position);

-- At most one opportunity per contact and pipeline.
CREATE TABLE opportunities (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pipeline_id   uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    contact_id    uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    stage_id      uuid NOT NULL REFERENCES pipeline_stages (id),
    name          text NOT NULL,
    value         numeric(16, 2) CHECK (value >= 0),
    status        text NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'won', 'lost', 'abandoned')),
    custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by    uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pipeline_id, contact_id)
);
CREATE INDEX opportunities_contact_idx ON opportunities (contact_id);
CREATE INDEX opportunities_stage_idx ON opportunities (stage_id);

ALTER TABLE bulk_actions DROP CONSTRAINT bulk_actions_action_check;
ALTER TABLE bulk_actions ADD CONSTRAINT bulk_actions_action_check
    CHECK (action IN ('add_to_campaign', 'send_message', 'add_tags', 'remove_tags',
                      'delete_contacts', 'restore_contacts', 'export_contacts',
                      'add_to_company', 'remove_from_company', 'upsert_opportunities'));
