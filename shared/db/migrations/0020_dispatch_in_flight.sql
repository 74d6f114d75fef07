-- Dispatch claims only while fewer than `dispatch_max_in_flight` executions hold a live lease
-- (claimed, not yet stepped by a sender), so a large backlog drains at the senders' pace
-- instead of being leased all at once and claimed again as the leases run out. Counting the
-- leased rows reads this index; it holds only leased rows (a step clears the lease), so it
-- stays as small as the bound and costs nothing to the updates that leave lease_until NULL.
CREATE INDEX executions_leased_idx ON executions (lease_until) WHERE lease_until IS NOT NULL;
