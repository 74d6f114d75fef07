-- Campaign statistics (spec 001, "Campaign Statistics"): the stats service keeps one row per
-- campaign, refreshed from the source tables whenever an event says the campaign changed, so the
-- row always equals get_campaign_statistics() once the events are consumed. The old counters
-- were incremented per event and could not be recounted; the new row is rebuilt below.

-- A percentage by the spec's formulas, zero when the denominator is zero.
CREATE FUNCTION statistics_rate(numerator numeric, denominator numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN denominator > 0 THEN round(numerator * 100.0 / denominator, 2) ELSE 0 END
$$;

-- The figures of many campaigns at once, counted from executions and messages. A campaign's
-- current contacts are its executions that were not removed; messages count through them, so
-- removing a contact takes its progress out of the figures (spec: "progress lost").
CREATE TYPE campaign_figures AS (
    campaign_id        uuid,
    total_contacts     bigint,
    contacts_started   bigint,
    contacts_completed bigint,
    contacts_failed    bigint,
    contacts_active    bigint,
    contacts_responded bigint,
    messages_sent      bigint,
    messages_failed    bigint,
    messages_delivered bigint,
    messages_not_sent  bigint,
    completion_rate    numeric,
    response_rate      numeric,
    delivery_rate      numeric,
    variants           jsonb,
    by_status          jsonb
);

CREATE FUNCTION campaign_statistics(campaign_ids uuid[]) RETURNS SETOF campaign_figures
LANGUAGE sql STABLE AS $$
WITH per_message AS (
    SELECT m.execution_id,
           count(*) FILTER (WHERE m.direction = 'outgoing'
                              AND m.status IN ('sent', 'delivered', 'read')) AS sent,
           count(*) FILTER (WHERE m.direction = 'outgoing' AND m.status = 'failed') AS failed,
           count(*) FILTER (WHERE m.direction = 'outgoing'
                              AND m.status IN ('delivered', 'read')) AS delivered,
           count(*) FILTER (WHERE m.direction = 'outgoing'
                              AND m.status IN ('queued', 'unknown')) AS not_sent,
           bool_or(m.direction = 'incoming') AS responded
    FROM messages m
    WHERE m.campaign_id = ANY(campaign_ids) AND m.execution_id IS NOT NULL
    GROUP BY m.execution_id
), per_execution AS (
    SELECT e.campaign_id, e.variant, e.status,
           e.started_at IS NOT NULL AS started,
           coalesce(m.sent, 0) AS sent, coalesce(m.failed, 0) AS failed,
           coalesce(m.delivered, 0) AS delivered, coalesce(m.not_sent, 0) AS not_sent,
           coalesce(m.responded, false) AS responded
    FROM executions e
    LEFT JOIN per_message m ON m.execution_id = e.id
    WHERE e.campaign_id = ANY(campaign_ids) AND e.deleted_at IS NULL
), per_variant AS (
    SELECT campaign_id, variant,
           count(*) AS contacts,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE responded) AS responded,
           sum(sent)::bigint AS sent, sum(delivered)::bigint AS delivered,
           sum(failed)::bigint AS failed
    FROM per_execution
    WHERE variant IS NOT NULL
    GROUP BY campaign_id, variant
), variants AS (
    SELECT campaign_id,
           jsonb_object_agg(variant, jsonb_build_object(
               'contacts', contacts,
               'contacts_completed', completed,
               'contacts_responded', responded,
               'messages_sent', sent,
               'messages_delivered', delivered,
               'messages_failed', failed,
               'completion_rate', statistics_rate(completed, contacts),
               'response_rate', statistics_rate(responded, delivered),
               'delivery_rate', statistics_rate(delivered, sent))) AS variants
    FROM per_variant
    GROUP BY campaign_id
), totals AS (
    SELECT campaign_id,
           count(*) AS total_contacts,
           count(*) FILTER (WHERE started) AS contacts_started,
           count(*) FILTER (WHERE status = 'completed') AS contacts_completed,
           count(*) FILTER (WHERE status = 'failed') AS contacts_failed,
           count(*) FILTER (WHERE started
                              AND status IN ('pending', 'running', 'waiting')) AS contacts_active,
           count(*) FILTER (WHERE responded) AS contacts_responded,
           sum(sent)::bigint AS messages_sent, sum(failed)::bigint AS messages_failed,
           sum(delivered)::bigint AS messages_delivered,
           sum(not_sent)::bigint AS messages_not_sent
    FROM per_execution
    GROUP BY campaign_id
), by_status AS (
    SELECT campaign_id, jsonb_object_agg(status, executions) AS by_status
    FROM (SELECT campaign_id, status, count(*) AS executions
          FROM per_execution GROUP BY campaign_id, status) counted
    GROUP BY campaign_id
)
SELECT c.id,
       coalesce(t.total_contacts, 0), coalesce(t.contacts_started, 0),
       coalesce(t.contacts_completed, 0), coalesce(t.contacts_failed, 0),
       coalesce(t.contacts_active, 0), coalesce(t.contacts_responded, 0),
       coalesce(t.messages_sent, 0), coalesce(t.messages_failed, 0),
       coalesce(t.messages_delivered, 0), coalesce(t.messages_not_sent, 0),
       statistics_rate(coalesce(t.contacts_completed, 0), coalesce(t.total_contacts, 0)),
       statistics_rate(coalesce(t.contacts_responded, 0), coalesce(t.messages_delivered, 0)),
       statistics_rate(coalesce(t.messages_delivered, 0), coalesce(t.messages_sent, 0)),
       coalesce(v.variants, '{}'::jsonb),
       coalesce(b.by_status, '{}'::jsonb)
FROM campaigns c
LEFT JOIN totals t ON t.campaign_id = c.id
LEFT JOIN variants v ON v.campaign_id = c.id
LEFT JOIN by_status b ON b.campaign_id = c.id
WHERE c.id = ANY(campaign_ids)
$$;

-- The spec's database function: one campaign's figures, recounted now.
CREATE FUNCTION get_campaign_statistics(campaign uuid) RETURNS SETOF campaign_figures
LANGUAGE sql STABLE AS $$
    SELECT * FROM campaign_statistics(ARRAY[campaign])
$$;

DROP TABLE campaign_stats;
CREATE TABLE campaign_stats (
    campaign_id        uuid PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    total_contacts     bigint NOT NULL,
    contacts_started   bigint NOT NULL,
    contacts_completed bigint NOT NULL,
    contacts_failed    bigint NOT NULL,
    contacts_active    bigint NOT NULL,
    contacts_responded bigint NOT NULL,
    messages_sent      bigint NOT NULL,
    messages_failed    bigint NOT NULL,
    messages_delivered bigint NOT NULL,
    messages_not_sent  bigint NOT NULL,
    completion_rate    numeric NOT NULL,
    response_rate      numeric NOT NULL,
    delivery_rate      numeric NOT NULL,
    variants           jsonb NOT NULL,
    by_status          jsonb NOT NULL,
    -- When the figures were counted, and the newest event that asked for it.
    as_of              timestamptz NOT NULL,
    last_event_at      timestamptz,
    refreshes          bigint NOT NULL DEFAULT 1
);

-- How far behind the events the stats service is, per topic, as of its latest batch: the API
-- reports it beside the figures.
CREATE TABLE stats_progress (
    topic            text PRIMARY KEY,
    last_occurred_at timestamptz NOT NULL,
    applied_at       timestamptz NOT NULL,
    lag_seconds      double precision NOT NULL
);

INSERT INTO campaign_stats
SELECT s.*, now(), NULL, 1
FROM campaign_statistics(ARRAY(SELECT id FROM campaigns)) s;
