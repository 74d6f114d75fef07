-- name: lock_campaigns
SELECT statistics_lock($1::uuid[]);

-- name: refresh
-- $1 executions to recount, $2 campaigns to recount whole, $3/$4 each named campaign with its
-- event's time, $5 now (see refresh_statistics in the schema).
SELECT refresh_statistics($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5);

-- name: record_progress
-- Per topic: the newest event applied, and how old the oldest event of the batch was when its
-- figures were refreshed. The API shows it as the statistics' lag.
INSERT INTO stats_progress (topic, last_occurred_at, applied_at, lag_seconds)
VALUES ($1, $2, $3, $4)
ON CONFLICT (topic) DO UPDATE
SET last_occurred_at = greatest(stats_progress.last_occurred_at, excluded.last_occurred_at),
    applied_at = excluded.applied_at,
    lag_seconds = excluded.lag_seconds
WHERE stats_progress.applied_at <= excluded.applied_at;
