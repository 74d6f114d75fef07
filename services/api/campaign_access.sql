-- name: get
SELECT * FROM campaigns WHERE id = $1;

-- name: lock
SELECT * FROM campaigns WHERE id = $1 FOR UPDATE;
