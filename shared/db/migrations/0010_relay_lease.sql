-- The outbox relay (docs/architecture.md, "Outbox relay"): leadership is a lease that the
-- leader renews, not an advisory lock, so a paused leader (SIGSTOP, a frozen VM) loses it; and
-- the relay remembers where the broker acknowledged each record, so it can publish again what
-- a broker that lost data had acknowledged.

-- One row. epoch is the fencing token: a takeover increments it, and the leader marks records
-- sent, renews and republishes only while the row still carries its epoch.
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

-- Where the broker acknowledged each published record (NULL for older records).
ALTER TABLE outbox ADD COLUMN kafka_partition integer, ADD COLUMN kafka_offset bigint;
