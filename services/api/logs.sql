-- The execution audit trail of a campaign (execution_logs, written by the sender) and the
-- activity feed (its important entries, with the campaign's own events from the stats service).

-- name: custom_plans
-- Search terms and filters change which plan is right (a rare term: the trigram index; a common
-- one: the newest rows, filtered), so no generic plan may be cached for them. SET LOCAL: it ends
-- with the transaction.
SET LOCAL plan_cache_mode = force_custom_plan;

-- name: page
-- One page, newest first. The WHERE holds fixed clauses over l with bound values. The contact is
-- joined after the limit, for the page's rows only. The search clause is the `search` block:
-- the expression of execution_logs_search_idx, verbatim, or the index is not used (that block
-- has no comment lines, since it is spliced into this WHERE). executed_at is printed here as the
-- API prints times (pydantic: UTC as Z, microseconds only when there are any), so that the
-- exports, formatted by the server, read exactly like the list.
SELECT l.id, l.created_at,
       to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
       || CASE WHEN extract(microseconds FROM l.created_at)::bigint % 1000000 = 0 THEN ''
               ELSE to_char(l.created_at AT TIME ZONE 'UTC', '.US') END
       || 'Z' AS executed_at,
       l.execution_id, l.contact_id, l.node_id, l.node_type, l.event, l.status, l.message,
       l.details,
       coalesce(nullif(concat_ws(' ', c.first_name, c.last_name), ''),
                '@' || c.telegram_username, c.phone, c.telegram_user_id::text) AS contact_name
FROM (SELECT l.id, l.created_at, l.execution_id, l.contact_id, l.node_id, l.node_type, l.event,
             l.status, l.message, l.details
      FROM execution_logs l
      WHERE {where}
      ORDER BY l.created_at DESC, l.id DESC
      LIMIT {limit}) AS l
LEFT JOIN contacts c ON c.id = l.contact_id
ORDER BY l.created_at DESC, l.id DESC

-- name: export_csv
-- A page (the `page` block) as CSV cells, and the position to go on from. The server turns the
-- values into text: decoding typed values into Python objects costs the api more than writing
-- them out.
SELECT p.created_at, p.id,
       ARRAY[p.id::text, p.executed_at, p.execution_id::text, p.contact_id::text, p.contact_name,
             p.node_id, p.node_type, p.event, p.status, p.message, p.details::text] AS cells
FROM ({page}) AS p
ORDER BY p.created_at DESC, p.id DESC

-- name: export_jsonl
-- A page as JSON lines, each one a list item (LogEntry), made by the server as export_csv.
SELECT p.created_at, p.id,
       json_build_object(
           'id', p.id, 'executed_at', p.executed_at, 'execution_id', p.execution_id,
           'contact', CASE WHEN p.contact_id IS NOT NULL
                           THEN json_build_object('id', p.contact_id, 'name', p.contact_name)
                      END,
           'node_id', p.node_id, 'node_type', p.node_type, 'event', p.event, 'status', p.status,
           'message', p.message, 'details', p.details)::text AS line
FROM ({page}) AS p
ORDER BY p.created_at DESC, p.id DESC

-- name: activities
-- The newest important entries: execution_logs' (execution_logs_activity_idx; the event list
-- must match its predicate) and the campaign's own events, each side cut to the limit first.
SELECT f.source, f.kind, f.occurred_at, f.execution_id, f.contact_id, f.node_id, f.node_type,
       f.status, f.message, f.details, f.summary,
       coalesce(nullif(concat_ws(' ', c.first_name, c.last_name), ''),
                '@' || c.telegram_username, c.phone, c.telegram_user_id::text) AS contact_name
FROM ((SELECT 'log' AS source, l.event AS kind, l.created_at AS occurred_at, l.id,
              l.execution_id, l.contact_id, l.node_id, l.node_type, l.status, l.message,
              l.details, NULL::text AS summary
       FROM execution_logs l
       WHERE l.campaign_id = $1
         AND l.event IN ('message_sent', 'delivery_confirmed', 'reply_received',
                         'execution_failed')
       ORDER BY l.created_at DESC, l.id DESC
       LIMIT $2)
      UNION ALL
      (SELECT 'campaign', a.type, a.occurred_at, a.id, NULL, NULL, NULL, NULL, NULL, NULL,
              a.details, a.summary
       FROM campaign_activities a
       WHERE a.campaign_id = $1
       ORDER BY a.occurred_at DESC, a.id DESC
       LIMIT $2)) AS f
LEFT JOIN contacts c ON c.id = f.contact_id
ORDER BY f.occurred_at DESC, f.source DESC, f.id DESC
LIMIT $2;

-- name: search
(coalesce(l.contact_text, '') || E'\n' || coalesce(l.message, '')) ILIKE {pattern}
