-- The contacts list pages newest first by (created_at, id) (issue 17, item 6). Its indexes
-- ended at created_at, and contacts created by one statement (an import, a bulk create) share
-- their created_at, so the planner read every contact of the scope and sorted it for each page
-- (3-4 ms per page at 20,000 contacts, most of the database's time under bench.api_load). With
-- id in the key a page is the index walked backwards, LIMIT rows and no sort. Same names, same
-- predicates: what used the old indexes uses these.
DROP INDEX contacts_org_idx;
CREATE INDEX contacts_org_idx ON contacts (organization_id, created_at, id)
    WHERE deleted_at IS NULL;
DROP INDEX contacts_owner_idx;
CREATE INDEX contacts_owner_idx ON contacts (owner_user_id, created_at, id)
    WHERE organization_id IS NULL AND deleted_at IS NULL;
