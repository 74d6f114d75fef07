-- import_contacts bulk actions (issue 19, item 4): a batch of an upload's rows applied in the
-- batch's transaction, under the action's row lock (services/scheduler/bulk_actions.py).

-- name: format
SELECT format FROM contact_imports WHERE id = $1;

-- name: claim_rows
-- The next pending rows in line order.
SELECT line, data, parse_error FROM contact_import_rows
WHERE import_id = $1 AND status = 'pending'
ORDER BY line
LIMIT $2;

-- name: candidates
-- The contacts of the action's context ($1 organization, or $2 the personal owner) that the
-- batch's external ids ($3, deleted ones included: an external id names one contact for good),
-- lower-case usernames ($4) or phones ($5) find, locked in id order (contact.upsert's lookups,
-- for a whole batch at once).
SELECT id, external_id, telegram_username, phone, telegram_user_id, first_name, last_name,
       tags, custom_fields, time_zone, created_at, deleted_at IS NOT NULL AS deleted
FROM contacts
WHERE organization_id IS NOT DISTINCT FROM $1 AND ($1::uuid IS NOT NULL OR owner_user_id = $2)
  AND (external_id = ANY($3::text[])
       OR (deleted_at IS NULL AND (lower(telegram_username) = ANY($4::text[])
                                   OR phone = ANY($5::text[]))))
ORDER BY id
FOR UPDATE;

-- name: earlier_rows
-- Of these contacts, the ones an earlier batch of this import already wrote, with its line.
SELECT contact_id, min(line) AS line FROM contact_import_rows
WHERE import_id = $1 AND contact_id = ANY($2::uuid[]) AND status = 'succeeded'
GROUP BY contact_id;

-- name: insert_contacts
-- The batch's new contacts, owned by the action's creator ($2) in its context ($1).
INSERT INTO contacts (id, organization_id, owner_user_id, external_id, telegram_username, phone,
                      telegram_user_id, first_name, last_name, custom_fields, tags, time_zone,
                      created_at, updated_at)
SELECT r.id, $1, $2, r.external_id, r.telegram_username, r.phone, r.telegram_user_id,
       r.first_name, r.last_name, r.custom_fields, r.tags, r.time_zone, $4, $4
FROM jsonb_to_recordset($3::jsonb) AS r(id uuid, external_id text, telegram_username text,
                                        phone text, telegram_user_id bigint, first_name text,
                                        last_name text, custom_fields jsonb, tags text[],
                                        time_zone text);

-- name: update_contacts
-- The batch's updated contacts as they end up (locked by candidates).
UPDATE contacts c
SET external_id = r.external_id, telegram_username = r.telegram_username, phone = r.phone,
    telegram_user_id = r.telegram_user_id, first_name = r.first_name, last_name = r.last_name,
    custom_fields = r.custom_fields, tags = r.tags, time_zone = r.time_zone, updated_at = $2
FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, external_id text, telegram_username text,
                                        phone text, telegram_user_id bigint, first_name text,
                                        last_name text, custom_fields jsonb, tags text[],
                                        time_zone text)
WHERE c.id = r.id;

-- name: record_rows
UPDATE contact_import_rows r
SET status = v.status, error_code = v.code, error_message = v.message,
    contact_id = v.contact_id, details = v.details, batch_number = $2, processed_at = $3
FROM unnest($4::integer[], $5::text[], $6::text[], $7::text[], $8::uuid[], $9::jsonb[])
     AS v(line, status, code, message, contact_id, details)
WHERE r.import_id = $1 AND r.line = v.line;

-- name: any_pending
SELECT EXISTS (SELECT 1 FROM contact_import_rows WHERE import_id = $1 AND status = 'pending');
