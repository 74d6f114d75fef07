-- Never message the wrong person (issue 15, items 2 and 3): the do-not-contact list, and the
-- opt-out figure of the statistics. See docs/do-not-contact.md.

-- One identifier of a person not to be messaged, in one list: an organization's, or a user's in
-- personal mode (list_id is whichever of the two it is). Values are normalised as
-- shared/domain/do_not_contact.py `normalise` does: usernames lower-case without @, phones the
-- digits of the international number, user ids and contact ids as text.
CREATE TABLE do_not_contact (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    list_id         uuid NOT NULL GENERATED ALWAYS AS (coalesce(organization_id, user_id)) STORED,
    kind            text NOT NULL
                    CHECK (kind IN ('contact', 'telegram_user_id', 'username', 'phone')),
    value           text NOT NULL CHECK (length(value) BETWEEN 1 AND 64),
    reason          text NOT NULL CHECK (reason IN ('request', 'complaint', 'manual', 'imported')),
    source          text NOT NULL CHECK (source IN ('api', 'import', 'kafka', 'reply')),
    note            text CHECK (length(note) <= 1000),
    -- The contact it was taken from (an opt-out, an entry by contact), kept for the listing.
    contact_id      uuid REFERENCES contacts (id) ON DELETE SET NULL,
    added_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL,
    CHECK ((organization_id IS NULL) <> (user_id IS NULL))
);
CREATE UNIQUE INDEX do_not_contact_entry_key ON do_not_contact (list_id, kind, value);
-- The listing: newest first, keyset on (created_at, id).
CREATE INDEX do_not_contact_list_idx ON do_not_contact (list_id, created_at DESC, id DESC);

-- Is this contact on its list? The contact's identifiers normalised as the entries are; each
-- arm is a probe of the unique index. The list is the contact's organization's, or its owner's
-- in personal mode. (The parameters' names are not the table's columns': those would win.)
CREATE FUNCTION do_not_contact_listed(contact_org uuid, contact_owner uuid, contact uuid,
                                      contact_user_id bigint, contact_username text,
                                      contact_phone text)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM do_not_contact d
        WHERE d.list_id = coalesce(contact_org, contact_owner)
          AND ((d.kind = 'contact' AND d.value = contact::text)
               OR (d.kind = 'telegram_user_id' AND d.value = contact_user_id::text)
               OR (d.kind = 'username' AND d.value = lower(ltrim(contact_username, '@')))
               OR (d.kind = 'phone' AND d.value = regexp_replace(contact_phone, '[^0-9]', '', 'g'))))
$$;

-- The opt-out figure: executions an opt-out reply completed (status completed, error_message
-- opted_out), per campaign, stored like the others and counted by the same recount.
ALTER TABLE execution_figures ADD COLUMN opted_out boolean NOT NULL DEFAULT false;
ALTER TABLE campaign_stats ADD COLUMN contacts_opted_out bigint NOT NULL DEFAULT 0;
ALTER TYPE campaign_figures ADD ATTRIBUTE contacts_opted_out bigint;
DROP FUNCTION figure_sums(execution_figures[], execution_figures[]);
DROP FUNCTION get_campaign_statistics(uuid);
DROP FUNCTION execution_contributions(uuid[], uuid[]);
DROP FUNCTION campaign_statistics(uuid[]);
DROP FUNCTION stored_campaign_statistics(uuid[]);
DROP FUNCTION refresh_statistics(uuid[], uuid[], uuid[], timestamptz[], timestamptz);

CREATE FUNCTION execution_contributions(execution_ids uuid[], campaign_ids uuid[])
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
    executions_cancelled bigint,
    contacts_opted_out   bigint
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
       coalesce(sum(s.sign) FILTER (WHERE s.status = 'cancelled'), 0),
       coalesce(sum(s.sign) FILTER (WHERE s.opted_out), 0)
FROM signed s
GROUP BY GROUPING SETS ((s.campaign_id), (s.campaign_id, s.variant))
HAVING grouping(s.variant) = 1 OR s.variant IS NOT NULL
$$;

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
                                 t.executions_cancelled), '{}'),
       coalesce(t.contacts_opted_out, 0)
FROM campaigns c
LEFT JOIN counted t ON t.campaign_id = c.id AND NOT t.per_variant
WHERE c.id = ANY(campaign_ids)
$$;

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
    by_status          jsonb,
    contacts_opted_out bigint,
    opt_out_rate       numeric
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
       s.by_status,
       s.contacts_opted_out,
       statistics_rate(s.contacts_opted_out, s.messages_delivered)
FROM campaign_statistics(ARRAY[campaign]) s
$$;

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
                        s.executions_cancelled),
       s.contacts_opted_out
FROM campaign_stats s
WHERE s.campaign_id = ANY(campaign_ids)
$$;

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
        delivered = excluded.delivered, not_sent = excluded.not_sent,
        opted_out = excluded.opted_out
    -- Several events about one unchanged execution (a step's progress and its message) write
    -- nothing.
    WHERE (execution_figures.variant, execution_figures.status, execution_figures.started,
           execution_figures.responded, execution_figures.sent, execution_figures.failed,
           execution_figures.delivered, execution_figures.not_sent,
           execution_figures.opted_out)
          IS DISTINCT FROM (excluded.variant, excluded.status, excluded.started,
                            excluded.responded, excluded.sent, excluded.failed,
                            excluded.delivered, excluded.not_sent, excluded.opted_out)
    RETURNING 1
), totals AS (
    INSERT INTO campaign_stats AS s (
        campaign_id, total_contacts, contacts_started, contacts_completed, contacts_failed,
        contacts_active, contacts_responded, messages_sent, messages_failed,
        messages_delivered, messages_not_sent, executions_pending, executions_running,
        executions_waiting, executions_paused, executions_cancelled, as_of, last_event_at,
        refreshes, contacts_opted_out)
    SELECT k.campaign_id,
           coalesce(c.total_contacts, 0), coalesce(c.contacts_started, 0),
           coalesce(c.contacts_completed, 0), coalesce(c.contacts_failed, 0),
           coalesce(c.contacts_active, 0), coalesce(c.contacts_responded, 0),
           coalesce(c.messages_sent, 0), coalesce(c.messages_failed, 0),
           coalesce(c.messages_delivered, 0), coalesce(c.messages_not_sent, 0),
           coalesce(c.executions_pending, 0), coalesce(c.executions_running, 0),
           coalesce(c.executions_waiting, 0), coalesce(c.executions_paused, 0),
           coalesce(c.executions_cancelled, 0),
           now, e.at, 1, coalesce(c.contacts_opted_out, 0)
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
        contacts_opted_out = s.contacts_opted_out + excluded.contacts_opted_out,
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

