-- Bulk operations over campaigns (spec 000) as built: the statuses of the API contract, the
-- request as received (for the audit trail), and an item for every campaign named, including
-- ids that match no campaign (reported as not found, so no foreign key).
ALTER TABLE bulk_operations DROP CONSTRAINT bulk_operations_status_check;
ALTER TABLE bulk_operations ALTER COLUMN status SET DEFAULT 'queued';
ALTER TABLE bulk_operations ADD CONSTRAINT bulk_operations_status_check
    CHECK (status IN ('queued', 'processing', 'completed', 'failed'));
-- reset_completed for launches; the `wait` of the request is not kept.
ALTER TABLE bulk_operations ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE bulk_operations ADD COLUMN origin text NOT NULL DEFAULT 'http'
    CHECK (origin IN ('http', 'kafka'));
ALTER TABLE bulk_operations ADD COLUMN correlation_id uuid;
-- Why the whole operation failed (a selection that could not be resolved), never an item's.
ALTER TABLE bulk_operations ADD COLUMN error_message text;
ALTER TABLE bulk_operations ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX bulk_operations_unfinished_idx ON bulk_operations (created_at)
    WHERE status IN ('queued', 'processing');

ALTER TABLE bulk_operation_items DROP CONSTRAINT bulk_operation_items_campaign_id_fkey;
CREATE INDEX bulk_operation_items_pending_idx ON bulk_operation_items (bulk_operation_id, campaign_id)
    WHERE status = 'pending';

-- Fixed-window request counters (per user and kind of request) behind 429 answers; shared by
-- every API instance.
CREATE TABLE rate_limits (
    subject      text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (subject, window_start)
);
