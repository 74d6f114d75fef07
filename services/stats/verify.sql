-- name: materialized_figures
-- The stored figures ($1: these campaigns, or all when NULL).
SELECT * FROM stored_campaign_statistics(coalesce($1::uuid[], ARRAY(SELECT id FROM campaigns)));

-- name: recounted_figures
-- The same campaigns counted now from the source tables.
SELECT * FROM campaign_statistics(coalesce($1::uuid[], ARRAY(SELECT id FROM campaigns)));

-- name: lock_campaigns
-- The same advisory locks refresh.py takes, so a rebuild and a refresh never interleave.
SELECT statistics_lock($1::uuid[]);

-- name: rebuild
-- Replace the stored figures of campaigns $1 by a recount from the source tables: every
-- execution's share, the totals and the variants ($2: now). The caller holds statistics_lock()
-- on them, so no refresh interleaves, and a later refresh adds its differences to these
-- figures. One statement, one snapshot: returns each campaign's stored figures as they were
-- (recounted false) and the recount that replaced them (recounted true).
WITH fresh AS MATERIALIZED (
    SELECT ARRAY(SELECT c FROM execution_contributions('{}', $1::uuid[]) c) AS shares
), sums AS MATERIALIZED (
    SELECT f.* FROM fresh, figure_sums(fresh.shares, '{}') f
), shares AS (
    INSERT INTO execution_figures
    SELECT c.* FROM fresh, unnest(fresh.shares) c
    ON CONFLICT (execution_id) DO UPDATE
    SET variant = excluded.variant, status = excluded.status, started = excluded.started,
        responded = excluded.responded, sent = excluded.sent, failed = excluded.failed,
        delivered = excluded.delivered, not_sent = excluded.not_sent,
        opted_out = excluded.opted_out
    WHERE (execution_figures.variant, execution_figures.status, execution_figures.started,
           execution_figures.responded, execution_figures.sent, execution_figures.failed,
           execution_figures.delivered, execution_figures.not_sent, execution_figures.opted_out)
          IS DISTINCT FROM (excluded.variant, excluded.status, excluded.started,
                            excluded.responded, excluded.sent, excluded.failed,
                            excluded.delivered, excluded.not_sent, excluded.opted_out)
    RETURNING 1
), orphans AS (
    DELETE FROM execution_figures f
    WHERE f.campaign_id = ANY($1::uuid[])
      AND f.execution_id NOT IN (SELECT (c).execution_id FROM fresh, unnest(fresh.shares) c)
    RETURNING 1
), totals AS (
    INSERT INTO campaign_stats AS s (
        campaign_id, total_contacts, contacts_started, contacts_completed, contacts_failed,
        contacts_active, contacts_responded, messages_sent, messages_failed,
        messages_delivered, messages_not_sent, executions_pending, executions_running,
        executions_waiting, executions_paused, executions_cancelled, as_of, last_event_at,
        refreshes, contacts_opted_out)
    SELECT c.id,
           coalesce(t.total_contacts, 0), coalesce(t.contacts_started, 0),
           coalesce(t.contacts_completed, 0), coalesce(t.contacts_failed, 0),
           coalesce(t.contacts_active, 0), coalesce(t.contacts_responded, 0),
           coalesce(t.messages_sent, 0), coalesce(t.messages_failed, 0),
           coalesce(t.messages_delivered, 0), coalesce(t.messages_not_sent, 0),
           coalesce(t.executions_pending, 0), coalesce(t.executions_running, 0),
           coalesce(t.executions_waiting, 0), coalesce(t.executions_paused, 0),
           coalesce(t.executions_cancelled, 0),
           $2::timestamptz, NULL, 1, coalesce(t.contacts_opted_out, 0)
    FROM campaigns c
    LEFT JOIN sums t ON t.campaign_id = c.id AND NOT t.per_variant
    WHERE c.id = ANY($1::uuid[])
    ON CONFLICT (campaign_id) DO UPDATE
    SET total_contacts = excluded.total_contacts,
        contacts_started = excluded.contacts_started,
        contacts_completed = excluded.contacts_completed,
        contacts_failed = excluded.contacts_failed,
        contacts_active = excluded.contacts_active,
        contacts_responded = excluded.contacts_responded,
        messages_sent = excluded.messages_sent,
        messages_failed = excluded.messages_failed,
        messages_delivered = excluded.messages_delivered,
        messages_not_sent = excluded.messages_not_sent,
        executions_pending = excluded.executions_pending,
        executions_running = excluded.executions_running,
        executions_waiting = excluded.executions_waiting,
        executions_paused = excluded.executions_paused,
        executions_cancelled = excluded.executions_cancelled,
        contacts_opted_out = excluded.contacts_opted_out,
        as_of = excluded.as_of,
        refreshes = s.refreshes + 1
    RETURNING 1
), stale_variants AS (
    DELETE FROM campaign_variant_stats v
    WHERE v.campaign_id = ANY($1::uuid[])
      AND NOT EXISTS (SELECT 1 FROM sums t
                      WHERE t.per_variant AND t.campaign_id = v.campaign_id
                        AND t.variant = v.variant)
    RETURNING 1
), variants AS (
    INSERT INTO campaign_variant_stats AS v
    SELECT t.campaign_id, t.variant, t.total_contacts, t.contacts_completed,
           t.contacts_responded, t.messages_sent, t.messages_delivered, t.messages_failed
    FROM sums t
    WHERE t.per_variant
    ON CONFLICT (campaign_id, variant) DO UPDATE
    SET contacts = excluded.contacts,
        contacts_completed = excluded.contacts_completed,
        contacts_responded = excluded.contacts_responded,
        messages_sent = excluded.messages_sent,
        messages_delivered = excluded.messages_delivered,
        messages_failed = excluded.messages_failed
    RETURNING 1
)
SELECT b.*, false AS recounted FROM stored_campaign_statistics($1::uuid[]) b
UNION ALL
SELECT r.*, true FROM campaign_statistics($1::uuid[]) r;
