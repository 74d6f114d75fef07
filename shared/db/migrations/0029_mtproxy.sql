-- An account's proxy may be an MTProxy (issue 14, item 2): its secret is sealed in proxy_secret,
-- and it has no username.

ALTER TABLE telegram_accounts DROP CONSTRAINT telegram_accounts_proxy_type_check;
ALTER TABLE telegram_accounts ADD CONSTRAINT telegram_accounts_proxy_type_check
    CHECK (proxy_type IN ('socks5', 'http', 'mtproxy'));
ALTER TABLE telegram_accounts ADD CONSTRAINT telegram_accounts_mtproxy_check CHECK (
    proxy_type IS DISTINCT FROM 'mtproxy'
    OR (proxy_secret IS NOT NULL AND proxy_username IS NULL));
