-- A campaign's executions for the statistics read in two arms (the ids asked for, then the
-- campaigns asked for) instead of one OR: the planner answered a provably empty arm from any
-- partial index and filtered every row by both conditions, so recounting many campaigns at once
-- searched the campaign list once per execution (issue 18's benchmarks: a recount of every
-- campaign took 1.8x as long after 0020 added executions_leased_idx).
CREATE OR REPLACE FUNCTION execution_contributions(execution_ids uuid[], campaign_ids uuid[])
RETURNS SETOF execution_figures
LANGUAGE sql STABLE AS $$
SELECT e.id, e.campaign_id, e.variant,
       CASE WHEN e.deleted_at IS NULL THEN e.status END,
       e.started_at IS NOT NULL,
       coalesce(m.responded, false),
       coalesce(m.sent, 0), coalesce(m.failed, 0), coalesce(m.delivered, 0),
       coalesce(m.not_sent, 0),
       e.deleted_at IS NULL AND e.status = 'completed'
           AND e.error_message IS NOT DISTINCT FROM 'opted_out'
FROM (
    -- Two arms, not one OR: an arm of an empty array is provably false, so the planner may
    -- answer it from any partial index and then filters every row of the other arm by both
    -- conditions, a linear search of campaign_ids per row (a recount of 5,000 campaigns took
    -- 6 s there instead of 0.1; migration 0030).
    SELECT x.* FROM executions x WHERE x.id = ANY(execution_ids)
    UNION ALL
    SELECT x.* FROM executions x
    WHERE x.campaign_id = ANY(campaign_ids) AND x.id <> ALL(execution_ids)
) e
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
$$;
