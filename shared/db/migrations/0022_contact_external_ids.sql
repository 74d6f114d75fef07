-- Issue 16: other systems upsert contacts over Kafka by their own id. Unique within a context
-- (the organization, or the owner in personal mode) where set, deleted contacts included, so an
-- external id names one contact for good (docs/kafka.md).
ALTER TABLE contacts ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND 200);
CREATE UNIQUE INDEX contacts_external_id_idx
    ON contacts ((coalesce(organization_id, owner_user_id)), external_id)
    WHERE external_id IS NOT NULL;
