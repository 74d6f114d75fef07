-- Fixed-window counters: one row per subject and window, shared by every API instance.

-- name: hit
-- Count this request in the window starting at $2; answers the count so far.
INSERT INTO rate_limits (subject, window_start, hits)
VALUES ($1, $2, 1)
ON CONFLICT (subject, window_start) DO UPDATE SET hits = rate_limits.hits + 1
RETURNING hits;

-- name: forget_old
DELETE FROM rate_limits WHERE subject = $1 AND window_start < $2;
