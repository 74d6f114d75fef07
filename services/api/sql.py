"""The API's named SQL, one file per resource beside this module, loaded once."""

from __future__ import annotations

from pathlib import Path

from shared.db.sql import Queries

_HERE = Path(__file__).parent
QUERIES = Queries.load(_HERE / "queries.sql")  # users, keys, memberships
BULK_ACTIONS = Queries.load(_HERE / "bulk_actions.sql")
BULK_OPERATIONS = Queries.load(_HERE / "bulk_operations.sql")
CAMPAIGNS = Queries.load(_HERE / "campaigns.sql")
CONTACTS = Queries.load(_HERE / "contacts.sql")
ORGANIZATIONS = Queries.load(_HERE / "organizations.sql")
RATE_LIMITS = Queries.load(_HERE / "rate_limits.sql")
TELEGRAM_ACCOUNTS = Queries.load(_HERE / "telegram_accounts.sql")
STATISTICS = Queries.load(_HERE / "statistics.sql")
