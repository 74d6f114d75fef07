-- Logs tab and activity feed (spec 001). See docs/logs.md for the reasoning.

-- Search is a substring match (ILIKE '%term%') over the contact's name and the entry's text;
-- trigram GIN is the index that answers it. btree_gin lets the same GIN index hold the
-- campaign id, so one index scan finds one campaign's matches without visiting other tenants'.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- The contact as searchable text, as the writers of execution_logs copy it in: a log row is
-- searched without a join, and an audit entry keeps the name it was written under.
CREATE FUNCTION log_contact_text(first_name text, last_name text, username text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT concat_ws(' ', first_name, last_name, '@' || username)
$$;

ALTER TABLE execution_logs ADD COLUMN contact_text text;

UPDATE execution_logs l
SET contact_text = log_contact_text(c.first_name, c.last_name, c.telegram_username)
FROM contacts c
WHERE c.id = l.contact_id;

-- The expression must be repeated verbatim by the queries that search (services/api/logs.sql).
CREATE INDEX execution_logs_search_idx ON execution_logs
    USING gin (campaign_id, (coalesce(contact_text, '') || E'\n' || coalesce(message, ''))
               gin_trgm_ops);
-- Whether a term is better found through this index or by walking the newest rows depends on
-- how common it is: a finer histogram of the text makes the planner's guess close enough.
ALTER INDEX execution_logs_search_idx ALTER COLUMN 2 SET STATISTICS 1000;

-- The activity feed reads the newest few important entries of a campaign with millions of rows.
CREATE INDEX execution_logs_activity_idx ON execution_logs (campaign_id, created_at DESC, id DESC)
    WHERE event IN ('message_sent', 'delivery_confirmed', 'reply_received', 'execution_failed');
