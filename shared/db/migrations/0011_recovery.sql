-- Recovery that does not rest on the broker keeping its promises (issue 13): the stats service
-- reconciles its figures against a recount, and the scheduler applies commands whose message
-- never reached it. See docs/statistics.md ("Reconciliation") and docs/campaigns.md.

-- How far the stats service's reconciliation has read the outbox: every campaign named by an
-- outbox record up to outbox_id has been compared with a recount (and repaired if it differed).
CREATE TABLE stats_reconciliation (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    outbox_id     bigint NOT NULL,
    reconciled_at timestamptz NOT NULL
);

-- The scheduler's sweep for lost commands walks the command records only (a few per user
-- action among the events).
CREATE INDEX outbox_commands_idx ON outbox (id) WHERE topic = 'dripline.campaign.commands';
