-- Campaign statistics (spec 001, "Campaign Statistics"), kept by the stats service from events.
-- Each execution's share of its campaign's figures is stored (execution_figures); an event that
-- names an execution recounts that execution alone from the source tables and adds the
-- difference to its campaign's totals (campaign_stats) and variant (campaign_variant_stats).
-- An event that names only a campaign recounts all of its executions the same way. So the cost
-- follows the events, not the campaigns' sizes, and the totals always equal a recount once the
-- events are consumed. The old per-event counters could not be recounted; they are rebuilt.

-- A percentage by the spec's formulas, zero when the denominator is zero.
CREATE FUNCTION statistics_rate(numerator numeric, denominator numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN denominator > 0 THEN round(numerator * 100.0 / denominator, 2) ELSE 0 END
$$;

-- Each execution's share as last counted by the stats service.
CREATE TABLE execution_figures (
    execution_id uuid PRIMARY KEY,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    variant      text,
    status       text,
    started      boolean NOT NULL,
    responded    boolean NOT NULL,
    sent         integer NOT NULL,
    failed       integer NOT NULL,
    delivered    integer NOT NULL,
    not_sent     integer NOT NULL
);
CREATE INDEX execution_figures_campaign_idx ON execution_figures (campaign_id);

-- What executions add to their campaigns' figures, counted from executions and messages: these
-- executions, and every execution of these campaigns. A removed execution (deleted_at) adds
-- nothing: its status is NULL (spec: removing a contact loses its progress).
CREATE FUNCTION execution_contributions(execution_ids uuid[], campaign_ids uuid[])
RETURNS SETOF execution_figures
LANGUAGE sql STABLE AS $$
SELECT e.id, e.campaign_id, e.variant,
       CASE WHEN e.deleted_at IS NULL THEN e.status END,
       e.started_at IS NOT NULL,
       coalesce(m.responded, false),
       coalesce(m.sent, 0), coalesce(m.failed, 0), coalesce(m.delivered, 0),
       coalesce(m.not_sent, 0)
FROM executions e
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE direction = 'outgoing'
                              AND status IN ('sent', 'delivered', 'read'))::integer AS sent,
           count(*) FILTER (WHERE direction = 'outgoing' AND status = 'failed')::integer AS failed,
           count(*) FILTER (WHERE direction = 'outgoing'
                              AND status IN ('delivered', 'read'))::integer AS delivered,
           count(*) FILTER (WHERE direction = 'outgoing'
                              AND status IN ('queued', 'unknown'))::integer AS not_sent,
           bool_or(direction = 'incoming') AS responded
    FROM messages m
    WHERE m.execution_id = e.id
) m ON true
WHERE e.id = ANY(execution_ids) OR e.campaign_id = ANY(campaign_ids)
$$;

-- Figures summed over shares: `added` counted in, `removed` counted out (the shares they replace,
-- for a refresh; none, for a recount). Per campaign (per_variant false) and per variant.
CREATE FUNCTION figure_sums(added execution_figures[], removed execution_figures[])
RETURNS TABLE (
    campaign_id          uuid,
    variant              text,
    per_variant          boolean,
    total_contacts       bigint,
    contacts_started     bigint,
    contacts_completed   bigint,
    contacts_failed      bigint,
    contacts_active      bigint,
    contacts_responded   bigint,
    messages_sent        bigint,
    messages_failed      bigint,
    messages_delivered   bigint,
    messages_not_sent    bigint,
    executions_pending   bigint,
    executions_running   bigint,
    executions_waiting   bigint,
    executions_paused    bigint,
    executions_cancelled bigint
)
LANGUAGE sql IMMUTABLE AS $$
WITH signed AS (
    SELECT a.*, 1 AS sign FROM unnest(added) a WHERE a.status IS NOT NULL
    UNION ALL
    SELECT r.*, -1 FROM unnest(removed) r WHERE r.status IS NOT NULL
)
SELECT s.campaign_id, s.variant, grouping(s.variant) = 0,
       sum(s.sign),
       coalesce(sum(s.sign) FILTER (WHERE s.started), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.status = 'completed'), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.status = 'failed'), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.started
                                      AND s.status IN ('pending', 'running', 'waiting')), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.responded), 0),
       sum(s.sign * s.sent), sum(s.sign * s.failed), sum(s.sign * s.delivered),
       sum(s.sign * s.not_sent),
       coalesce(sum(s.sign) FILTER (WHERE s.status = 'pending'), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.status = 'running'), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.status = 'waiting'), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.status = 'paused'), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.status = 'cancelled'), 0)
FROM signed s
GROUP BY GROUPING SETS ((s.campaign_id), (s.campaign_id, s.variant))
HAVING grouping(s.variant) = 1 OR s.variant IS NOT NULL
$$;

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
    variants           jsonb,
    by_status          jsonb
);

-- Counts of one campaign or variant as the statistics show them: statuses with executions.
CREATE FUNCTION status_breakdown(pending bigint, running bigint, waiting bigint, paused bigint,
                                 completed bigint, failed bigint, cancelled bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'pending', nullif(pending, 0), 'running', nullif(running, 0),
        'waiting', nullif(waiting, 0), 'paused', nullif(paused, 0),
        'completed', nullif(completed, 0), 'failed', nullif(failed, 0),
        'cancelled', nullif(cancelled, 0)))
$$;

CREATE FUNCTION variant_figures(contacts bigint, completed bigint, responded bigint, sent bigint,
                                delivered bigint, failed bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object('contacts', contacts, 'contacts_completed', completed,
                              'contacts_responded', responded, 'messages_sent', sent,
                              'messages_delivered', delivered, 'messages_failed', failed)
$$;

-- Many campaigns' figures recounted now from the source tables.
CREATE FUNCTION campaign_statistics(campaign_ids uuid[]) RETURNS SETOF campaign_figures
LANGUAGE sql STABLE AS $$
WITH counted AS (
    SELECT f.*
    FROM figure_sums(ARRAY(SELECT c FROM execution_contributions('{}', campaign_ids) c), '{}') f
)
SELECT c.id,
       coalesce(t.total_contacts, 0), coalesce(t.contacts_started, 0),
       coalesce(t.contacts_completed, 0), coalesce(t.contacts_failed, 0),
       coalesce(t.contacts_active, 0), coalesce(t.contacts_responded, 0),
       coalesce(t.messages_sent, 0), coalesce(t.messages_failed, 0),
       coalesce(t.messages_delivered, 0), coalesce(t.messages_not_sent, 0),
       coalesce((SELECT jsonb_object_agg(v.variant, variant_figures(
                            v.total_contacts, v.contacts_completed, v.contacts_responded,
                            v.messages_sent, v.messages_delivered, v.messages_failed))
                 FROM counted v WHERE v.campaign_id = c.id AND v.per_variant), '{}'),
       coalesce(status_breakdown(t.executions_pending, t.executions_running,
                                 t.executions_waiting, t.executions_paused,
                                 t.contacts_completed, t.contacts_failed,
                                 t.executions_cancelled), '{}')
FROM campaigns c
LEFT JOIN counted t ON t.campaign_id = c.id AND NOT t.per_variant
WHERE c.id = ANY(campaign_ids)
$$;

-- The spec's database function: one campaign's figures and rates, recounted now.
CREATE FUNCTION get_campaign_statistics(campaign uuid)
RETURNS TABLE (
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
)
LANGUAGE sql STABLE AS $$
SELECT s.campaign_id, s.total_contacts, s.contacts_started, s.contacts_completed,
       s.contacts_failed, s.contacts_active, s.contacts_responded, s.messages_sent,
       s.messages_failed, s.messages_delivered, s.messages_not_sent,
       statistics_rate(s.contacts_completed, s.total_contacts),
       statistics_rate(s.contacts_responded, s.messages_delivered),
       statistics_rate(s.messages_delivered, s.messages_sent),
       (SELECT coalesce(jsonb_object_agg(name, figures || jsonb_build_object(
                    'completion_rate', statistics_rate((figures ->> 'contacts_completed')::numeric,
                                                       (figures ->> 'contacts')::numeric),
                    'response_rate', statistics_rate((figures ->> 'contacts_responded')::numeric,
                                                     (figures ->> 'messages_delivered')::numeric),
                    'delivery_rate', statistics_rate((figures ->> 'messages_delivered')::numeric,
                                                     (figures ->> 'messages_sent')::numeric))),
                '{}')
        FROM jsonb_each(s.variants) AS v (name, figures)),
       s.by_status
FROM campaign_statistics(ARRAY[campaign]) s
$$;

DROP TABLE campaign_stats;
-- The stored totals, one row per campaign an event has named.
CREATE TABLE campaign_stats (
    campaign_id          uuid PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    total_contacts       bigint NOT NULL DEFAULT 0,
    contacts_started     bigint NOT NULL DEFAULT 0,
    contacts_completed   bigint NOT NULL DEFAULT 0,
    contacts_failed      bigint NOT NULL DEFAULT 0,
    contacts_active      bigint NOT NULL DEFAULT 0,
    contacts_responded   bigint NOT NULL DEFAULT 0,
    messages_sent        bigint NOT NULL DEFAULT 0,
    messages_failed      bigint NOT NULL DEFAULT 0,
    messages_delivered   bigint NOT NULL DEFAULT 0,
    messages_not_sent    bigint NOT NULL DEFAULT 0,
    executions_pending   bigint NOT NULL DEFAULT 0,
    executions_running   bigint NOT NULL DEFAULT 0,
    executions_waiting   bigint NOT NULL DEFAULT 0,
    executions_paused    bigint NOT NULL DEFAULT 0,
    executions_cancelled bigint NOT NULL DEFAULT 0,
    -- When the figures were last brought up to date, and the newest event that did it.
    as_of                timestamptz NOT NULL,
    last_event_at        timestamptz,
    refreshes            bigint NOT NULL DEFAULT 1
);

-- The same per A/B variant (the variant an execution's split chose).
CREATE TABLE campaign_variant_stats (
    campaign_id        uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    variant            text NOT NULL,
    contacts           bigint NOT NULL DEFAULT 0,
    contacts_completed bigint NOT NULL DEFAULT 0,
    contacts_responded bigint NOT NULL DEFAULT 0,
    messages_sent      bigint NOT NULL DEFAULT 0,
    messages_delivered bigint NOT NULL DEFAULT 0,
    messages_failed    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, variant)
);

-- The stored figures in the shape of a recount, to serve and to compare.
CREATE FUNCTION stored_campaign_statistics(campaign_ids uuid[]) RETURNS SETOF campaign_figures
LANGUAGE sql STABLE AS $$
SELECT s.campaign_id, s.total_contacts, s.contacts_started, s.contacts_completed,
       s.contacts_failed, s.contacts_active, s.contacts_responded, s.messages_sent,
       s.messages_failed, s.messages_delivered, s.messages_not_sent,
       coalesce((SELECT jsonb_object_agg(v.variant, variant_figures(
                            v.contacts, v.contacts_completed, v.contacts_responded,
                            v.messages_sent, v.messages_delivered, v.messages_failed))
                 FROM campaign_variant_stats v
                 WHERE v.campaign_id = s.campaign_id AND v.contacts <> 0), '{}'),
       status_breakdown(s.executions_pending, s.executions_running, s.executions_waiting,
                        s.executions_paused, s.contacts_completed, s.contacts_failed,
                        s.executions_cancelled)
FROM campaign_stats s
WHERE s.campaign_id = ANY(campaign_ids)
$$;

-- Bring the stored figures up to date: recount these executions and every execution of these
-- campaigns, add what changed to their campaigns' and variants' totals, and store the new
-- shares. `touched` pairs each campaign an event named with the event's time; a campaign with
-- no stored row yet is recounted whole. One statement, so every part sees one snapshot. The
-- caller holds statistics_lock() on the campaigns, so refreshes of a campaign never interleave.
CREATE FUNCTION refresh_statistics(execution_ids uuid[], campaign_ids uuid[],
                                   touched uuid[], touched_at timestamptz[], now timestamptz)
RETURNS bigint
LANGUAGE sql AS $$
WITH events AS (
    SELECT t.campaign_id, max(t.at) AS at
    FROM unnest(touched, touched_at) AS t (campaign_id, at)
    JOIN campaigns c ON c.id = t.campaign_id
    GROUP BY t.campaign_id
), whole AS (
    SELECT campaign_ids || ARRAY(
        SELECT e.campaign_id FROM events e
        WHERE NOT EXISTS (SELECT 1 FROM campaign_stats s WHERE s.campaign_id = e.campaign_id)
    ) AS ids
), fresh AS MATERIALIZED (
    SELECT ARRAY(SELECT c FROM execution_contributions(execution_ids, whole.ids) c) AS shares
    FROM whole
), stale AS MATERIALIZED (
    SELECT ARRAY(SELECT f FROM execution_figures f
                 WHERE f.execution_id = ANY(execution_ids) OR f.campaign_id = ANY(whole.ids))
           AS shares
    FROM whole
), changes AS MATERIALIZED (
    SELECT f.* FROM fresh, stale, figure_sums(fresh.shares, stale.shares) f
), stored AS (
    INSERT INTO execution_figures
    SELECT c.* FROM fresh, unnest(fresh.shares) c
    ON CONFLICT (execution_id) DO UPDATE
    SET variant = excluded.variant, status = excluded.status, started = excluded.started,
        responded = excluded.responded, sent = excluded.sent, failed = excluded.failed,
        delivered = excluded.delivered, not_sent = excluded.not_sent
    -- Several events about one unchanged execution (a step's progress and its message) write
    -- nothing.
    WHERE (execution_figures.variant, execution_figures.status, execution_figures.started,
           execution_figures.responded, execution_figures.sent, execution_figures.failed,
           execution_figures.delivered, execution_figures.not_sent)
          IS DISTINCT FROM (excluded.variant, excluded.status, excluded.started,
                            excluded.responded, excluded.sent, excluded.failed,
                            excluded.delivered, excluded.not_sent)
    RETURNING 1
), totals AS (
    INSERT INTO campaign_stats AS s
    SELECT k.campaign_id,
           coalesce(c.total_contacts, 0), coalesce(c.contacts_started, 0),
           coalesce(c.contacts_completed, 0), coalesce(c.contacts_failed, 0),
           coalesce(c.contacts_active, 0), coalesce(c.contacts_responded, 0),
           coalesce(c.messages_sent, 0), coalesce(c.messages_failed, 0),
           coalesce(c.messages_delivered, 0), coalesce(c.messages_not_sent, 0),
           coalesce(c.executions_pending, 0), coalesce(c.executions_running, 0),
           coalesce(c.executions_waiting, 0), coalesce(c.executions_paused, 0),
           coalesce(c.executions_cancelled, 0),
           now, e.at, 1
    FROM (SELECT campaign_id FROM events
          UNION SELECT campaign_id FROM changes WHERE NOT per_variant) k
    LEFT JOIN events e ON e.campaign_id = k.campaign_id
    LEFT JOIN changes c ON c.campaign_id = k.campaign_id AND NOT c.per_variant
    ON CONFLICT (campaign_id) DO UPDATE
    SET total_contacts = s.total_contacts + excluded.total_contacts,
        contacts_started = s.contacts_started + excluded.contacts_started,
        contacts_completed = s.contacts_completed + excluded.contacts_completed,
        contacts_failed = s.contacts_failed + excluded.contacts_failed,
        contacts_active = s.contacts_active + excluded.contacts_active,
        contacts_responded = s.contacts_responded + excluded.contacts_responded,
        messages_sent = s.messages_sent + excluded.messages_sent,
        messages_failed = s.messages_failed + excluded.messages_failed,
        messages_delivered = s.messages_delivered + excluded.messages_delivered,
        messages_not_sent = s.messages_not_sent + excluded.messages_not_sent,
        executions_pending = s.executions_pending + excluded.executions_pending,
        executions_running = s.executions_running + excluded.executions_running,
        executions_waiting = s.executions_waiting + excluded.executions_waiting,
        executions_paused = s.executions_paused + excluded.executions_paused,
        executions_cancelled = s.executions_cancelled + excluded.executions_cancelled,
        as_of = excluded.as_of,
        last_event_at = greatest(s.last_event_at, excluded.last_event_at),
        refreshes = s.refreshes + 1
    RETURNING 1
), variants AS (
    INSERT INTO campaign_variant_stats AS v
    SELECT c.campaign_id, c.variant, c.total_contacts, c.contacts_completed,
           c.contacts_responded, c.messages_sent, c.messages_delivered, c.messages_failed
    FROM changes c
    WHERE c.per_variant
      AND (c.total_contacts, c.contacts_completed, c.contacts_responded, c.messages_sent,
           c.messages_delivered, c.messages_failed) <> (0, 0, 0, 0, 0, 0)
    ON CONFLICT (campaign_id, variant) DO UPDATE
    SET contacts = v.contacts + excluded.contacts,
        contacts_completed = v.contacts_completed + excluded.contacts_completed,
        contacts_responded = v.contacts_responded + excluded.contacts_responded,
        messages_sent = v.messages_sent + excluded.messages_sent,
        messages_delivered = v.messages_delivered + excluded.messages_delivered,
        messages_failed = v.messages_failed + excluded.messages_failed
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored) + (SELECT count(*) FROM totals)
       + (SELECT count(*) FROM variants)
$$;

-- Refreshes of one campaign's figures are serialized by this transaction-level lock, taken in
-- campaign id order (so two refreshes cannot deadlock) before the refresh counts.
CREATE FUNCTION statistics_lock(campaign_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtext('campaign_stats'), hashtext(id::text))
    FROM (SELECT DISTINCT unnest(campaign_ids) AS id ORDER BY 1) ids;
$$;

-- How far behind the events the stats service is, per topic, as of its latest batch: the API
-- reports it beside the figures.
CREATE TABLE stats_progress (
    topic            text PRIMARY KEY,
    last_occurred_at timestamptz NOT NULL,
    applied_at       timestamptz NOT NULL,
    lag_seconds      double precision NOT NULL
);

-- Every campaign counted once, as if each had just been named by an event; a thousand
-- campaigns at a time, so no statement holds every execution's share at once.
DO $$
DECLARE
    ids uuid[];
BEGIN
    FOR ids IN
        SELECT array_agg(id) FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / 1000 AS chunk
                                   FROM campaigns) numbered
        GROUP BY chunk
    LOOP
        PERFORM refresh_statistics('{}', ids, ids,
                                   array_fill(NULL::timestamptz, ARRAY[cardinality(ids)]), now());
    END LOOP;
END
$$;
