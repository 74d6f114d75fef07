-- Users and their API keys. Shared by accounts.py (a user with a key), api_keys.py (insert_api_key)
-- and organizations.py (upsert_user: inviting by e-mail). Listed in tests/shared/db/test_queries.py.

-- name: upsert_user
-- A user by e-mail, created on first sight.
INSERT INTO users (email, name) VALUES ($1, $2)
ON CONFLICT ((lower(email))) DO UPDATE SET name = coalesce(excluded.name, users.name)
RETURNING id, email, name;

-- name: insert_api_key
INSERT INTO api_keys (user_id, name, key_prefix, key_hash) VALUES ($1, $2, $3, $4)
RETURNING id, created_at;
