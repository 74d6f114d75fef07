"""The contacts list reads a page by walking an index, in both contexts and under both of the
plans PostgreSQL may keep for a prepared query (issue 17, item 6: one query for both contexts,
`organization_id IS NOT DISTINCT FROM $1`, read every contact of the scope and sorted them for
each page, 3-4 ms at 20,000 contacts, most of the database's time under bench.api_load)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.api.contacts import list_query
from shared.domain.permissions import Caller, Role

# Contacts created by one statement (an import) share their created_at: the order's tie-break,
# id, must come from the index too, or every page sorts the whole scope.
SEED = """
WITH people AS (
    INSERT INTO users (email) VALUES ('lists@example.com') RETURNING id
), team AS (
    INSERT INTO organizations (name) VALUES ('lists') RETURNING id
), own AS (
    INSERT INTO contacts (owner_user_id, telegram_username)
    SELECT people.id, 'own_' || n FROM people, generate_series(1, 3000) n
), shared_ AS (
    INSERT INTO contacts (organization_id, owner_user_id, telegram_username)
    SELECT team.id, people.id, 'team_' || n FROM people, team, generate_series(1, 3000) n
)
SELECT (SELECT id FROM people) AS user_id, (SELECT id FROM team) AS organization_id;
"""


@pytest.mark.parametrize("plan", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("context", ["personal", "organization"])
async def test_a_page_of_contacts_walks_its_index_without_sorting(
    pool: asyncpg.Pool[Any], plan: str, context: str
) -> None:
    async with pool.acquire() as connection, connection.transaction():
        seeded = await connection.fetchrow(SEED)
        assert seeded is not None
        await connection.execute("ANALYZE contacts")
        await connection.execute(f"SET LOCAL plan_cache_mode = {plan}")
        user: UUID = seeded["user_id"]
        caller = (
            Caller(user, None, None)
            if context == "personal"
            else Caller(user, seeded["organization_id"], Role.MEMBER)
        )
        query, scope = list_query(caller)
        for after in [(None, None), (await connection.fetchval("SELECT now()"), user)]:
            plan_text = "\n".join(
                r[0]
                for r in await connection.fetch(
                    f"EXPLAIN {query}", scope, *after, None, None, None, 51
                )
            )
            index = "contacts_owner_idx" if context == "personal" else "contacts_org_idx"
            assert f"Index Scan Backward using {index}" in plan_text, plan_text
            assert "Sort" not in plan_text, plan_text
