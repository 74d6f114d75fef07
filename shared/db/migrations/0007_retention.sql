-- The relay marks rows sent and deletes them after a retention period; the unsent-rows index
-- is walked on every pass, so its dead entries must be vacuumed away often.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX inbox_received_idx ON inbox (received_at);
