-- The canonical schema: what a database looks like after every migration. A test diffs a
-- migrated database against one built from this file, so a new migration must update it too.

-- People and organizations ------------------------------------------------------------------

CREATE TABLE organizations (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    admin_view_enabled boolean NOT NULL DEFAULT false,
    settings           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email      text NOT NULL,
    name       text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE memberships (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

-- Only a SHA-256 of the key is kept; the prefix lets an owner recognise a key in listings.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT 'default',
    key_prefix   text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE idempotency_keys (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key             text NOT NULL,
    request_hash    text NOT NULL,
    response_status integer NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Telegram accounts and contacts -------------------------------------------------------------

CREATE TABLE telegram_accounts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id   uuid NOT NULL REFERENCES users (id),
    display_name    text NOT NULL,
    phone           text,
    session_kind    text NOT NULL CHECK (session_kind IN ('telethon', 'simulated')),
    session_string  text,
    health_status   text NOT NULL DEFAULT 'disconnected'
                    CHECK (health_status IN ('active', 'warming', 'cooldown', 'limited',
                                             'frozen', 'disconnected', 'auth_lost',
                                             'session_conflict', 'banned')),
    health_detail   text,
    last_checked_at timestamptz,
    cooldown_until  timestamptz,
    -- the sender's health check: when next due (NULL: every health_check_interval_s), checks
    -- in a row that found it limited, frozen or unreachable, the end Telegram gave a limit or
    -- freeze, and a freeze's appeal link
    next_check_at   timestamptz,
    check_streak    integer NOT NULL DEFAULT 0,
    health_until    timestamptz,
    appeal_url      text,
    daily_quota     integer NOT NULL DEFAULT 50 CHECK (daily_quota >= 0),
    sent_today      integer NOT NULL DEFAULT 0,
    quota_day       date,
    simulation      jsonb NOT NULL DEFAULT '{}'::jsonb,
    pacing          jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_send_at    timestamptz,
    flood_on        date,
    warm_up         boolean NOT NULL DEFAULT false,
    -- the account's proxy; proxy_secret (its password, an MTProxy's secret) is sealed
    proxy_type      text CHECK (proxy_type IN ('socks5', 'http', 'mtproxy')),
    proxy_host      text,
    proxy_port      integer CHECK (proxy_port BETWEEN 1 AND 65535),
    proxy_username  text,
    proxy_secret    text,
    -- the device presented on every connect (initConnection), chosen once
    device_model     text,
    system_version   text,
    app_version      text,
    lang_code        text,
    system_lang_code text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CONSTRAINT telegram_accounts_proxy_check CHECK (
        (proxy_type IS NULL) = (proxy_host IS NULL)
        AND (proxy_type IS NULL) = (proxy_port IS NULL)
        AND (proxy_type IS NOT NULL OR (proxy_username IS NULL AND proxy_secret IS NULL))),
    CONSTRAINT telegram_accounts_mtproxy_check CHECK (
        proxy_type IS DISTINCT FROM 'mtproxy'
        OR (proxy_secret IS NOT NULL AND proxy_username IS NULL)),
    CONSTRAINT telegram_accounts_device_check CHECK (
        (device_model IS NULL) = (system_version IS NULL)
        AND (device_model IS NULL) = (app_version IS NULL)
        AND (device_model IS NULL) = (lang_code IS NULL)
        AND (device_model IS NULL) = (system_lang_code IS NULL))
);
CREATE INDEX telegram_accounts_org_idx ON telegram_accounts (organization_id, owner_user_id);

-- phone logins in progress; pending_secret (the auth key the code was asked on) is sealed
CREATE TABLE telegram_logins (
    id                  uuid PRIMARY KEY,
    organization_id     uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id       uuid NOT NULL REFERENCES users (id),
    telegram_account_id uuid NOT NULL,
    relogin             boolean NOT NULL,
    phone               text NOT NULL,
    display_name        text NOT NULL,
    api_id              integer,
    api_hash_secret     text,
    status              text NOT NULL
                        CHECK (status IN ('code_sent', 'password_needed', 'logged_in', 'failed')),
    pending_secret      text,
    failure_code        text,
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_logins_pending_idx ON telegram_logins (expires_at)
    WHERE pending_secret IS NOT NULL;

CREATE TABLE contacts (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id     uuid NOT NULL REFERENCES users (id),
    telegram_username text,
    phone             text,
    telegram_user_id  bigint,
    first_name        text,
    last_name         text,
    custom_fields     jsonb NOT NULL DEFAULT '{}'::jsonb,
    tags              text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    CHECK (telegram_username IS NOT NULL OR phone IS NOT NULL OR telegram_user_id IS NOT NULL)
);
-- The contacts list's order, (created_at, id), whole in the key: a page is an index walk (0031).
CREATE INDEX contacts_org_idx ON contacts (organization_id, created_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX contacts_owner_idx ON contacts (owner_user_id, created_at, id)
    WHERE organization_id IS NULL AND deleted_at IS NULL;
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);

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

-- Campaigns and their executions -----------------------------------------------------------

CREATE TABLE campaigns (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id     uuid REFERENCES organizations (id) ON DELETE CASCADE,
    created_by          uuid NOT NULL REFERENCES users (id),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description         text,
    telegram_account_id uuid REFERENCES telegram_accounts (id),
    timezone            text NOT NULL DEFAULT 'UTC',
    launch_type         text NOT NULL DEFAULT 'manual'
                        CHECK (launch_type IN ('now', 'manual', 'schedule', 'recurring')),
    scheduled_at        timestamptz,
    recurrence          text,
    status              text NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'scheduled', 'active', 'paused', 'completed',
                                          'cancelled', 'failed')),
    enabled             boolean NOT NULL DEFAULT true,
    failure_reason      text,
    flow                jsonb NOT NULL DEFAULT '{"nodes": [], "edges": []}'::jsonb,
    settings            jsonb NOT NULL DEFAULT '{}'::jsonb,
    tags                text[] NOT NULL DEFAULT '{}',
    next_run_at         timestamptz,
    missed_run_at       timestamptz,  -- a run time that passed unstarted (issue 16)
    launched_at         timestamptz,
    completed_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    deleted_by          uuid REFERENCES users (id)
);
CREATE INDEX campaigns_org_created_idx ON campaigns (organization_id, created_at DESC, id);
CREATE INDEX campaigns_creator_idx ON campaigns (created_by, created_at DESC, id)
    WHERE organization_id IS NULL;
CREATE INDEX campaigns_org_creator_idx ON campaigns (organization_id, created_by, created_at DESC);
CREATE INDEX campaigns_tags_idx ON campaigns USING gin (tags);
-- Scheduled and recurring launches the scheduler must start.
CREATE INDEX campaigns_next_run_idx ON campaigns (next_run_at)
    WHERE status = 'scheduled' AND enabled AND deleted_at IS NULL;

CREATE TABLE executions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id         uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id          uuid NOT NULL REFERENCES contacts (id),
    telegram_account_id uuid REFERENCES telegram_accounts (id),
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'waiting', 'paused', 'completed',
                                          'failed', 'cancelled')),
    current_node_id     text,
    next_execution_at   timestamptz,
    variant             text,
    context             jsonb NOT NULL DEFAULT '{}'::jsonb,
    error_message       text,
    attempts            integer NOT NULL DEFAULT 0,
    dispatched_at       timestamptz,
    started_at          timestamptz,
    completed_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    lease_until         timestamptz,
    taken_over_at       timestamptz,  -- its conversation was taken over (0020): held
    UNIQUE (campaign_id, contact_id)
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 1);
-- The hot path: claiming due executions with FOR UPDATE SKIP LOCKED in next_execution_at order.
CREATE INDEX executions_due_idx ON executions (next_execution_at)
    WHERE status IN ('pending', 'waiting');
-- A campaign's executions by status (0025): two partial indexes a cancelled row is in neither
-- of, so a stop writes fewer index entries; a campaign's cancelled rows are read through
-- (campaign_id, contact_id).
CREATE INDEX executions_unfinished_idx ON executions (campaign_id, status)
    WHERE status IN ('pending', 'running', 'waiting', 'paused');
CREATE INDEX executions_finished_idx ON executions (campaign_id, status)
    WHERE status IN ('completed', 'failed');
CREATE INDEX executions_contact_idx ON executions (contact_id);
-- Dispatch's backpressure counts the executions in flight (claimed, a lease not run out).
CREATE INDEX executions_leased_idx ON executions (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE execution_logs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    execution_id uuid REFERENCES executions (id) ON DELETE CASCADE,
    contact_id   uuid REFERENCES contacts (id),
    node_id      text,
    node_type    text,
    event        text NOT NULL,
    status       text NOT NULL,
    message      text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The contact as searchable text (log_contact_text), copied in when the entry is written.
    contact_text text
);
CREATE INDEX execution_logs_campaign_idx ON execution_logs (campaign_id, created_at DESC, id DESC);
CREATE INDEX execution_logs_execution_idx ON execution_logs (execution_id, created_at);

-- Search over the contact's name and the entry's text (ILIKE '%term%'): trigram GIN, with the
-- campaign id in the same index (btree_gin), so one index scan stays within one campaign.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE FUNCTION log_contact_text(first_name text, last_name text, username text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT concat_ws(' ', first_name, last_name, '@' || username)
$$;
-- The expression must be repeated verbatim by the queries that search (services/api/logs.sql).
CREATE INDEX execution_logs_search_idx ON execution_logs
    USING gin (campaign_id, (coalesce(contact_text, '') || E'\n' || coalesce(message, ''))
               gin_trgm_ops);
-- Whether a term is better found through this index or by walking the newest rows depends on
-- how common it is: a finer histogram of the text makes the planner's guess close enough.
ALTER INDEX execution_logs_search_idx ALTER COLUMN 2 SET STATISTICS 1000;
-- The activity feed: the newest important entries of a campaign.
CREATE INDEX execution_logs_activity_idx ON execution_logs (campaign_id, created_at DESC, id DESC)
    WHERE event IN ('message_sent', 'delivery_confirmed', 'reply_received', 'execution_failed');

CREATE TABLE messages (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id         uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    execution_id        uuid REFERENCES executions (id) ON DELETE CASCADE,
    contact_id          uuid NOT NULL REFERENCES contacts (id),
    telegram_account_id uuid REFERENCES telegram_accounts (id),
    node_id             text,
    variant             text,
    direction           text NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    body                text NOT NULL,
    status              text NOT NULL
                        CHECK (status IN ('queued', 'sent', 'delivered', 'read', 'failed',
                                          'received', 'unknown')),
    telegram_message_id bigint,
    error_code          text,
    error_message       text,
    sent_at             timestamptz,
    delivered_at        timestamptz,
    read_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    send_key            text,
    random_id           bigint
);
CREATE UNIQUE INDEX messages_send_key_idx ON messages (send_key);
CREATE INDEX messages_campaign_idx ON messages (campaign_id, created_at);
CREATE INDEX messages_execution_idx ON messages (execution_id, created_at);
CREATE INDEX messages_contact_sent_idx ON messages (contact_id, sent_at DESC)
    WHERE direction = 'outgoing' AND sent_at IS NOT NULL;

-- The unified inbox (0020, docs/inbox.md): one conversation per (account, contact), kept
-- in the transactions that record a send or a reply.
CREATE TABLE conversations (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    telegram_account_id uuid NOT NULL REFERENCES telegram_accounts (id) ON DELETE CASCADE,
    contact_id          uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    campaign_id         uuid REFERENCES campaigns (id) ON DELETE SET NULL,
    execution_id        uuid REFERENCES executions (id) ON DELETE SET NULL,
    last_message_id     uuid,
    last_direction      text NOT NULL CHECK (last_direction IN ('outgoing', 'incoming')),
    last_body           text NOT NULL,
    last_message_at     timestamptz NOT NULL,
    last_reply_at       timestamptz,
    unread_count        integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    taken_over_at       timestamptz,
    taken_over_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (telegram_account_id, contact_id)
);
CREATE INDEX conversations_recent_idx ON conversations (last_message_at DESC, id DESC);
CREATE INDEX conversations_campaign_idx ON conversations (campaign_id);


-- The simulated Telegram's own memory (only the simulator touches it).
CREATE TABLE simulator_messages (
    account_id      uuid NOT NULL,
    random_id       bigint NOT NULL,
    message_id      bigint GENERATED ALWAYS AS IDENTITY,
    peer            text NOT NULL,
    body            text NOT NULL,
    sent_at         timestamptz NOT NULL,
    read_at         timestamptz,
    reply_at        timestamptz,
    read_reported   boolean NOT NULL DEFAULT false,
    reply_reported  boolean NOT NULL DEFAULT false,
    attachment_id   uuid,  -- the photo or document sent with the body as its caption
    PRIMARY KEY (account_id, random_id)
);
CREATE INDEX simulator_messages_pending_idx ON simulator_messages (account_id, sent_at)
    WHERE NOT (read_reported AND reply_reported);

-- Telethon accounts: peers resolved per account (access hashes are per account), and the
-- replies and reads Telegram pushed, kept until the sender applies them.
CREATE TABLE telegram_peers (
    telegram_account_id uuid NOT NULL REFERENCES telegram_accounts (id) ON DELETE CASCADE,
    contact_id          uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    peer_key            text NOT NULL,
    user_id             bigint NOT NULL,
    access_hash         bigint NOT NULL,
    resolved_at         timestamptz NOT NULL,
    PRIMARY KEY (telegram_account_id, contact_id)
);
CREATE INDEX telegram_peers_user_idx ON telegram_peers (telegram_account_id, user_id);

CREATE TABLE telegram_updates (
    id                  bigserial PRIMARY KEY,
    telegram_account_id uuid NOT NULL REFERENCES telegram_accounts (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('reply', 'read')),
    peer_user_id        bigint NOT NULL,
    telegram_message_id bigint NOT NULL,
    body                text NOT NULL DEFAULT '',
    received_at         timestamptz NOT NULL,
    applied_at          timestamptz
);
CREATE UNIQUE INDEX telegram_updates_reply_idx
    ON telegram_updates (telegram_account_id, peer_user_id, telegram_message_id)
    WHERE kind = 'reply';
CREATE INDEX telegram_updates_pending_idx ON telegram_updates (id) WHERE applied_at IS NULL;

-- Bulk operations over campaigns, bulk actions over contacts ---------------------------------

CREATE TABLE bulk_operations (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id      uuid REFERENCES organizations (id) ON DELETE CASCADE,
    requested_by         uuid NOT NULL REFERENCES users (id),
    action               text NOT NULL
                         CHECK (action IN ('enable', 'disable', 'launch', 'stop', 'delete')),
    selection            jsonb NOT NULL,
    status               text NOT NULL DEFAULT 'queued',
    total                integer NOT NULL DEFAULT 0,
    processed            integer NOT NULL DEFAULT 0,
    success_count        integer NOT NULL DEFAULT 0,
    skipped_count        integer NOT NULL DEFAULT 0,
    error_count          integer NOT NULL DEFAULT 0,
    cancelled_executions integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    completed_at         timestamptz,
    options              jsonb NOT NULL DEFAULT '{}'::jsonb,
    origin               text NOT NULL DEFAULT 'http' CHECK (origin IN ('http', 'kafka')),
    correlation_id       uuid,
    error_message        text,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bulk_operations_status_check
        CHECK (status IN ('queued', 'processing', 'completed', 'failed'))
);
CREATE INDEX bulk_operations_requester_idx ON bulk_operations (requested_by, created_at DESC);
CREATE INDEX bulk_operations_unfinished_idx ON bulk_operations (created_at)
    WHERE status IN ('queued', 'processing');

-- One row per campaign named by the operation; campaign_id is not a foreign key, since an id
-- that matches no campaign is reported as not found.
CREATE TABLE bulk_operation_items (
    bulk_operation_id    uuid NOT NULL REFERENCES bulk_operations (id) ON DELETE CASCADE,
    campaign_id          uuid NOT NULL,
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'succeeded', 'skipped', 'failed')),
    error_code           text,
    error_message        text,
    cancelled_executions integer NOT NULL DEFAULT 0,
    processed_at         timestamptz,
    PRIMARY KEY (bulk_operation_id, campaign_id)
);
CREATE INDEX bulk_operation_items_pending_idx ON bulk_operation_items (bulk_operation_id, campaign_id)
    WHERE status = 'pending';

-- Fixed-window request counters behind 429 answers, shared by every API instance.
CREATE TABLE rate_limits (
    subject      text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (subject, window_start)
);

CREATE TABLE bulk_actions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid REFERENCES organizations (id) ON DELETE CASCADE,
    created_by       uuid NOT NULL REFERENCES users (id),
    action           text NOT NULL
                     CONSTRAINT bulk_actions_action_check
                     CHECK (action IN ('add_to_campaign', 'send_message', 'add_tags', 'remove_tags',
                                       'delete_contacts', 'restore_contacts', 'export_contacts',
                                       'add_to_company', 'remove_from_company',
                                       'upsert_opportunities', 'merge_contacts',
                                       'import_contacts')),
    mode             text NOT NULL CHECK (mode IN ('all_at_once', 'scheduled', 'drip')),
    selection        jsonb NOT NULL,
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'processing', 'paused', 'completed',
                                       'cancelled', 'failed')),
    batch_size       integer CHECK (batch_size > 0),
    interval_seconds integer CHECK (interval_seconds > 0),
    allowed_days     smallint[],
    window_start     time,
    window_end       time,
    timezone         text NOT NULL DEFAULT 'UTC',
    start_at         timestamptz,
    next_batch_at    timestamptz,
    total            integer NOT NULL DEFAULT 0,
    processed        integer NOT NULL DEFAULT 0,
    success_count    integer NOT NULL DEFAULT 0,
    skipped_count    integer NOT NULL DEFAULT 0,
    error_count      integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    cancelled_at     timestamptz,
    name             text NOT NULL DEFAULT '',
    batches          integer NOT NULL DEFAULT 0,
    last_batch_at    timestamptz,
    last_contact_id  uuid,
    error_message    text,
    source_action_id uuid REFERENCES bulk_actions (id)
);
CREATE INDEX bulk_actions_org_idx ON bulk_actions (organization_id, created_at DESC);
-- send_message runs as a one-message campaign of its own, not listed with the campaigns.
ALTER TABLE campaigns ADD COLUMN bulk_action_id uuid REFERENCES bulk_actions (id);
-- Drip batches the scheduler must release.
CREATE INDEX bulk_actions_next_batch_idx ON bulk_actions (next_batch_at)
    WHERE status IN ('queued', 'processing');
CREATE INDEX bulk_actions_creator_idx ON bulk_actions (created_by, created_at DESC);

CREATE TABLE bulk_action_items (
    bulk_action_id uuid NOT NULL REFERENCES bulk_actions (id) ON DELETE CASCADE,
    contact_id     uuid NOT NULL REFERENCES contacts (id),
    batch_number   integer,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'succeeded', 'skipped', 'failed')),
    error_code     text,
    error_message  text,
    processed_at   timestamptz,
    details        jsonb,
    PRIMARY KEY (bulk_action_id, contact_id)
);
CREATE INDEX bulk_action_items_pending_idx ON bulk_action_items (bulk_action_id, batch_number)
    WHERE status = 'pending';
CREATE INDEX bulk_action_items_order_idx ON bulk_action_items (bulk_action_id, contact_id)
    WHERE status = 'pending';

-- export_contacts writes its CSV here chunk by chunk; kept 30 days.
CREATE TABLE exports (
    id           uuid PRIMARY KEY REFERENCES bulk_actions (id) ON DELETE CASCADE,
    rows         integer NOT NULL DEFAULT 0,
    bytes        bigint NOT NULL DEFAULT 0,
    chunks       integer NOT NULL DEFAULT 0,
    completed_at timestamptz,
    expires_at   timestamptz NOT NULL
);
CREATE TABLE export_chunks (
    export_id uuid NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (export_id, seq)
);

-- Statistics (owned by the stats service) ----------------------------------------------------

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
    not_sent     integer NOT NULL,
    -- Completed by an opt-out reply (issue 15): the campaign's contacts_opted_out.
    opted_out    boolean NOT NULL DEFAULT false
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
    by_status          jsonb,
    contacts_opted_out bigint
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
                                 t.executions_cancelled), '{}'),
       coalesce(t.contacts_opted_out, 0)
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
    refreshes            bigint NOT NULL DEFAULT 1,
    contacts_opted_out   bigint NOT NULL DEFAULT 0
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
                        s.executions_cancelled),
       s.contacts_opted_out
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

-- How far the stats service's reconciliation has read the outbox: every campaign named by an
-- outbox record up to outbox_id has been compared with a recount (and repaired if it differed).
CREATE TABLE stats_reconciliation (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    outbox_id     bigint NOT NULL,
    reconciled_at timestamptz NOT NULL
);

CREATE TABLE campaign_activities (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    message_id  uuid NOT NULL UNIQUE,
    type        text NOT NULL,
    summary     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_activities_campaign_idx ON campaign_activities (campaign_id, occurred_at DESC);

-- Messaging: transactional outbox and idempotent inbox ---------------------------------------

-- A row is a Kafka record, written in the same transaction as the state change that caused it.
-- The relay publishes unsent rows in id order and stamps sent_at.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    key        bytea,
    value      bytea NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}'::jsonb,
    message_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    -- Where the broker acknowledged the record: a broker that lost it is found out by these.
    kafka_partition integer,
    kafka_offset    bigint
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
-- The scheduler's sweep for lost commands walks the command records only.
CREATE INDEX outbox_commands_idx ON outbox (topic, id)
    WHERE topic IN ('dripline.campaign.commands', 'dripline.bulk.commands');
-- A bulk operation's command record by its operation id (the key): the API answers an
-- operation the scheduler has not recorded yet from it.
CREATE INDEX outbox_bulk_commands_key_idx ON outbox (key) WHERE topic = 'dripline.bulk.commands';

-- The relay's leadership: a lease the leader renews. epoch is the fencing token; a takeover
-- increments it, and a leader whose epoch changed marks, renews and republishes nothing.
CREATE TABLE outbox_relay (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch           bigint NOT NULL DEFAULT 0,
    holder          text,
    backend_pid     integer,
    backend_started timestamptz,
    renewed_at      timestamptz,
    lease_until     timestamptz NOT NULL DEFAULT '-infinity',
    cluster_id      text
);
INSERT INTO outbox_relay DEFAULT VALUES;

-- Per partition (logical topic name), the offset of the first record of the last batch the
-- broker acknowledged: a broker whose end offset is not above it has lost that batch at least.
-- (A log is truncated at batch boundaries, and Tansu reports a partition's end as its last
-- batch's first offset + 1, so the batch's first offset is the one to compare.)
CREATE TABLE outbox_acked (
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    last_batch      bigint NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dripline_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Message ids a consumer has applied, written in the same transaction as the effect.
CREATE TABLE inbox (
    consumer    text NOT NULL,
    message_id  uuid NOT NULL,
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX inbox_received_idx ON inbox (received_at);

-- Companies, pipelines and opportunities (issue 19; docs/companies.md) ------------------------

CREATE TABLE companies (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id    uuid NOT NULL REFERENCES users (id),
    name             text NOT NULL,
    domain           text,
    telegram_channel text,
    custom_fields    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX companies_org_idx ON companies (organization_id, created_at);
CREATE INDEX companies_owner_idx ON companies (owner_user_id, created_at)
    WHERE organization_id IS NULL;

-- A contact belongs to at most one company; deleting the company leaves its contacts alone.
ALTER TABLE contacts ADD COLUMN company_id uuid REFERENCES companies (id) ON DELETE SET NULL;
CREATE INDEX contacts_company_idx ON contacts (company_id, created_at)
    WHERE company_id IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE pipelines (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id   uuid NOT NULL REFERENCES users (id),
    name            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipelines_org_idx ON pipelines (organization_id, created_at);

-- Ordered by position; a stage keeps its id across renames and reorders, so opportunities and
-- the stage-change events name a stable stage.
CREATE TABLE pipeline_stages (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pipeline_id uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name        text NOT NULL,
    position    integer NOT NULL CHECK (position >= 0)
);
CREATE INDEX pipeline_stages_pipeline_idx ON pipeline_stages (pipeline_id, position);

-- At most one opportunity per contact and pipeline.
CREATE TABLE opportunities (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pipeline_id   uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    contact_id    uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    stage_id      uuid NOT NULL REFERENCES pipeline_stages (id),
    name          text NOT NULL,
    value         numeric(16, 2) CHECK (value >= 0),
    status        text NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'won', 'lost', 'abandoned')),
    custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by    uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pipeline_id, contact_id)
);
CREATE INDEX opportunities_contact_idx ON opportunities (contact_id);
CREATE INDEX opportunities_stage_idx ON opportunities (stage_id);

-- Issue 16 (migration 0022): other systems upsert contacts over Kafka by their own id, unique
-- within a context (the organization, or the owner in personal mode) where set, deleted
-- contacts included.
ALTER TABLE contacts ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND 200);
CREATE UNIQUE INDEX contacts_external_id_idx
    ON contacts ((coalesce(organization_id, owner_user_id)), external_id)
    WHERE external_id IS NOT NULL;

-- Photos and documents uploaded once (POST /attachments) and named by send steps; the bytes are
-- bounded by DRIPLINE_MAX_ATTACHMENT_BYTES. organization_id is NULL in personal mode.
CREATE TABLE attachments (
    id              uuid PRIMARY KEY,
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    owner_user_id   uuid NOT NULL REFERENCES users (id),
    kind            text NOT NULL CHECK (kind IN ('photo', 'document')),
    content_type    text NOT NULL,
    filename        text NOT NULL,
    size_bytes      integer NOT NULL CHECK (size_bytes > 0),
    sha256          text NOT NULL,
    data            bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_organization_idx ON attachments (organization_id, created_at);

-- Merging contacts (0024): the contact merged away stays, soft-deleted, naming its master.
ALTER TABLE contacts ADD COLUMN merged_into_id uuid REFERENCES contacts (id);
CREATE INDEX contacts_merged_into_idx ON contacts (merged_into_id)
    WHERE merged_into_id IS NOT NULL;

-- The fleet circuit breaker (0026): an account's last moment in trouble (limited, frozen or
-- cooldown, entering or leaving), and one breaker per context (an organization, or a user in
-- personal mode); tripped_at NULL: sending is not paused.
ALTER TABLE telegram_accounts ADD COLUMN troubled_at timestamptz;
CREATE TABLE fleet_breakers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    tripped_at      timestamptz,
    reason          text,
    troubled        integer NOT NULL DEFAULT 0,
    sending         integer NOT NULL DEFAULT 0,
    evaluated_at    timestamptz NOT NULL,
    CONSTRAINT fleet_breakers_context_check CHECK ((organization_id IS NULL) <> (user_id IS NULL)),
    CONSTRAINT fleet_breakers_reason_check CHECK ((tripped_at IS NULL) = (reason IS NULL))
);
CREATE UNIQUE INDEX fleet_breakers_organization_idx ON fleet_breakers (organization_id)
    WHERE organization_id IS NOT NULL;
CREATE UNIQUE INDEX fleet_breakers_user_idx ON fleet_breakers (user_id)
    WHERE user_id IS NOT NULL;

-- A contact's own time zone (0027): an IANA name the API checked; NULL when none was given (the
-- zone its phone's country implies is computed where it is used, not stored).
ALTER TABLE contacts ADD COLUMN time_zone text CHECK (length(time_zone) BETWEEN 1 AND 64);

-- Imports as a tracked bulk action (0028): the upload, one row per record, with each row's
-- outcome.
CREATE TABLE contact_imports (
    id              uuid PRIMARY KEY,
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    created_by      uuid NOT NULL REFERENCES users (id),
    format          text NOT NULL CHECK (format IN ('csv', 'jsonl')),
    columns         text[] NOT NULL DEFAULT '{}',
    rows            integer NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    -- The import_contacts action that applies it (one at most).
    bulk_action_id  uuid UNIQUE REFERENCES bulk_actions (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL
);
CREATE INDEX contact_imports_creator_idx ON contact_imports (created_by, created_at);

-- One record of the upload: `line` is where it starts in the file (the CSV header is line 1).
-- `data` holds its cells (CSV: column -> text) or its object (JSONL); `parse_error` what made
-- it unreadable. Its outcome is recorded here, as bulk_action_items records a contact's.
CREATE TABLE contact_import_rows (
    import_id     uuid NOT NULL REFERENCES contact_imports (id) ON DELETE CASCADE,
    line          integer NOT NULL,
    data          jsonb,
    parse_error   text,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'succeeded', 'skipped', 'failed')),
    error_code    text,
    error_message text,
    contact_id    uuid REFERENCES contacts (id),
    details       jsonb,
    batch_number  integer,
    processed_at  timestamptz,
    PRIMARY KEY (import_id, line)
);
CREATE INDEX contact_import_rows_pending_idx ON contact_import_rows (import_id, line)
    WHERE status = 'pending';
CREATE INDEX contact_import_rows_contact_idx ON contact_import_rows (import_id, contact_id)
    WHERE contact_id IS NOT NULL;

-- An import finds existing contacts by username and phone, as contact.upsert does.
CREATE INDEX contacts_username_idx ON contacts (lower(telegram_username))
    WHERE deleted_at IS NULL AND telegram_username IS NOT NULL;
CREATE INDEX contacts_phone_idx ON contacts (phone)
    WHERE deleted_at IS NULL AND phone IS NOT NULL;
