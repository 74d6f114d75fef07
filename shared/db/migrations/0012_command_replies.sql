-- Commands answered by outcome events (issue 18, item 5; docs/architecture.md "Request and
-- reply"). The API no longer records a bulk operation itself: the scheduler records it from its
-- command. Until it has, the API answers the operation from its command record in the outbox,
-- found by the operation id it is keyed by; the scheduler tells a request the API published
-- (origin http) from one another system published by the same record.
CREATE INDEX outbox_bulk_commands_key_idx ON outbox (key) WHERE topic = 'dripline.bulk.commands';

-- The scheduler's sweep for lost commands walks the bulk commands too (a lost one would leave
-- an accepted operation unrecorded): one index for both topics, by topic and id.
DROP INDEX outbox_commands_idx;
CREATE INDEX outbox_commands_idx ON outbox (topic, id)
    WHERE topic IN ('dripline.campaign.commands', 'dripline.bulk.commands');
