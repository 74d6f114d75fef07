-- Real accounts (issue 14): a proxy per account, and the device identity it presents.

-- Every connection of the account goes through its proxy (SOCKS5 or HTTP CONNECT; MTProxy is
-- not offered yet). proxy_secret is its password, sealed like session_string (shared/crypto.py);
-- the username is shown by the API, so it is kept in clear.
ALTER TABLE telegram_accounts
    ADD COLUMN proxy_type text CHECK (proxy_type IN ('socks5', 'http')),
    ADD COLUMN proxy_host text,
    ADD COLUMN proxy_port integer CHECK (proxy_port BETWEEN 1 AND 65535),
    ADD COLUMN proxy_username text,
    ADD COLUMN proxy_secret text,
    ADD CONSTRAINT telegram_accounts_proxy_check CHECK (
        (proxy_type IS NULL) = (proxy_host IS NULL)
        AND (proxy_type IS NULL) = (proxy_port IS NULL)
        AND (proxy_type IS NOT NULL OR (proxy_username IS NULL AND proxy_secret IS NULL)));

-- What Telegram is told about the device on every connect (initConnection), chosen once. NULL
-- for simulated accounts, and for Telethon accounts brought in before this migration until the
-- sender adopts what they presented so far.
ALTER TABLE telegram_accounts
    ADD COLUMN device_model text,
    ADD COLUMN system_version text,
    ADD COLUMN app_version text,
    ADD COLUMN lang_code text,
    ADD COLUMN system_lang_code text,
    ADD CONSTRAINT telegram_accounts_device_check CHECK (
        (device_model IS NULL) = (system_version IS NULL)
        AND (device_model IS NULL) = (app_version IS NULL)
        AND (device_model IS NULL) = (lang_code IS NULL)
        AND (device_model IS NULL) = (system_lang_code IS NULL));
