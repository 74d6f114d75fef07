-- Merging two contacts (issue 19, item 1; spec 003's "Merge Contacts", irreversible). The
-- contact merged away is kept as a soft-deleted row that names its master: executions and
-- messages hold it by foreign key (an execution cancelled by the merge stays with it, since a
-- campaign has one execution per contact), and the row is the record of what became of it.

ALTER TABLE contacts ADD COLUMN merged_into_id uuid REFERENCES contacts (id);
CREATE INDEX contacts_merged_into_idx ON contacts (merged_into_id)
    WHERE merged_into_id IS NOT NULL;

ALTER TABLE bulk_actions DROP CONSTRAINT bulk_actions_action_check;
ALTER TABLE bulk_actions ADD CONSTRAINT bulk_actions_action_check
    CHECK (action IN ('add_to_campaign', 'send_message', 'add_tags', 'remove_tags',
                      'delete_contacts', 'restore_contacts', 'export_contacts',
                      'add_to_company', 'remove_from_company', 'upsert_opportunities',
                      'merge_contacts'));
