-- An export's CSV, read back in pages of chunks while it streams.

-- name: export_chunks
SELECT seq, data FROM export_chunks WHERE export_id = $1 AND seq > $2 ORDER BY seq LIMIT $3;
