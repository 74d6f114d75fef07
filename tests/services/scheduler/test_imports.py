"""An import_contacts bulk action applied by the scheduler's own code against the real database
(issue 19, item 4): the upload is stored by the API's streaming code, the batches are released
by `release`, and each row's outcome is read back from its row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.api.imports import store
from services.scheduler.bulk_actions import release
from shared.db.rows import BulkActionRow
from shared.domain.clock import FixedClock
from shared.domain.imports import Format
from shared.messaging.transaction import transaction
from tests.builders import END, SEND, edge, flow

NOW = datetime.now(UTC).replace(microsecond=0)


async def pieces(text: str, size: int = 7) -> AsyncIterator[bytes]:
    """The upload cut into small pieces, as a network delivers it."""
    data = text.encode()
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def user(pool: asyncpg.Pool[Any]) -> UUID:
    found: UUID = await pool.fetchval(
        "INSERT INTO users (email) VALUES ($1) RETURNING id", f"{uuid4().hex[:8]}@example.com"
    )
    return found


async def existing(pool: asyncpg.Pool[Any], owner: UUID, **fields: Any) -> UUID:
    names = ", ".join(fields)
    marks = ", ".join(f"${i + 2}" for i in range(len(fields)))
    found: UUID = await pool.fetchval(
        f"INSERT INTO contacts (owner_user_id, {names}) VALUES ($1, {marks}) RETURNING id",
        owner,
        *fields.values(),
    )
    return found


async def import_action(
    pool: asyncpg.Pool[Any],
    owner: UUID,
    text: str,
    params: dict[str, Any] | None = None,
    batch_size: int | None = None,
    format: Format = Format.CSV,
) -> UUID:
    """The upload stored as POST /imports stores it, and an action that took it, as
    POST /bulk-actions records it."""
    import_id = uuid4()
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO contact_imports (id, created_by, format, created_at)"
            " VALUES ($1, $2, $3, $4)",
            import_id,
            owner,
            format.value,
            NOW,
        )
        stored = await store(connection, import_id, format, pieces(text))
        drip = batch_size is not None
        action: UUID = await connection.fetchval(
            "INSERT INTO bulk_actions (created_by, name, action, mode, selection, params,"
            " batch_size, interval_seconds, next_batch_at, total)"
            " VALUES ($1, 'Import', 'import_contacts', $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            owner,
            "drip" if drip else "all_at_once",
            {"import_id": str(import_id)},
            {"import_id": str(import_id), **(params or {})},
            batch_size,
            60 if drip else None,
            NOW,
            stored["rows"],
        )
        await connection.execute(
            "UPDATE contact_imports SET bulk_action_id = $2 WHERE id = $1", import_id, action
        )
    return action


async def run(pool: asyncpg.Pool[Any], action_id: UUID) -> int:
    """Release batch after batch, each when due, as the periodic job would; returns how many."""
    batches, at = 0, NOW
    while True:
        async with transaction(pool, FixedClock(at)) as tx:
            row = await tx.connection.fetchrow(
                "SELECT * FROM bulk_actions WHERE id = $1 FOR UPDATE", action_id
            )
            assert row is not None
            if row["status"] in ("completed", "failed"):
                return batches
            await release(tx, BulkActionRow.from_row(row), row["next_batch_at"])
            at = row["next_batch_at"] + timedelta(hours=1)
            batches += 1


async def outcomes(pool: asyncpg.Pool[Any], action_id: UUID) -> dict[int, tuple[Any, ...]]:
    rows = await pool.fetch(
        "SELECT r.line, r.status, r.error_code, r.contact_id, r.details, r.batch_number"
        " FROM contact_import_rows r JOIN contact_imports u ON u.id = r.import_id"
        " WHERE u.bulk_action_id = $1 ORDER BY r.line",
        action_id,
    )
    return {r["line"]: (r["status"], r["error_code"], r["contact_id"], r["details"]) for r in rows}


FILE = (
    "telegram_username,phone,first_name,tags,plan\n"
    "new_person,+4915100000001,New,,pro\n"  # 2 created
    "Known_Person,,Renamed,,\n"  # 3 updated, found by username in any case
    "some_one,+4915100000009,,,\n"  # 4 username finds one contact, phone another
    "bad_phone,12,,,\n"  # 5 bad phone
    "x,y,z,t,p,extra\n"  # 6 too many values
    "again_person,+4915100000001,,vip,\n"  # 7 the same person as line 2, by phone
    ",,Nobody,,\n"  # 8 no identifier
)


async def test_rows_are_created_updated_merged_and_refused_with_their_lines(
    pool: asyncpg.Pool[Any],
) -> None:
    owner = await user(pool)
    known = await existing(pool, owner, telegram_username="known_person", first_name="Old")
    one = await existing(pool, owner, telegram_username="some_one")
    other = await existing(pool, owner, phone="+4915100000009")
    action_id = await import_action(pool, owner, FILE, {"tags": ["imported"]}, batch_size=3)

    assert await run(pool, action_id) == 3  # 7 rows, 3 a batch

    got = await outcomes(pool, action_id)
    created = got[2][2]
    assert {line: (o[0], o[1]) for line, o in got.items()} == {
        2: ("succeeded", "created"),
        3: ("succeeded", "updated"),
        4: ("skipped", "duplicate"),
        5: ("failed", "invalid_phone"),
        6: ("failed", "too_many_values"),
        7: ("succeeded", "duplicate_merged"),
        8: ("failed", "identifier_missing"),
    }
    assert got[3][2] == known
    assert (got[4][2], got[4][3]) == (one, {"other_contact_id": str(other)})
    assert got[7][2] == created
    assert got[7][3] == {"first_line": 2, "matched_by": "phone"}
    assert got[5][3]["errors"][0]["field"] == "phone"
    action = await pool.fetchrow("SELECT * FROM bulk_actions WHERE id = $1", action_id)
    assert action is not None
    assert (action["status"], action["total"], action["processed"]) == ("completed", 7, 7)
    assert (action["success_count"], action["skipped_count"], action["error_count"]) == (3, 1, 3)
    # The person of lines 2 and 7 is one contact, owned by the importer, with both rows merged
    # (tags given replace, the import's own are added) and the custom column kept.
    people = await pool.fetch(
        "SELECT * FROM contacts WHERE owner_user_id = $1 AND phone = '+4915100000001'", owner
    )
    assert len(people) == 1
    person = people[0]
    assert (person["id"], person["telegram_username"], person["first_name"]) == (
        created,
        "again_person",
        "New",
    )
    assert list(person["tags"]) == ["vip", "imported"]
    assert person["custom_fields"] == {"plan": "pro"}
    renamed = await pool.fetchrow("SELECT first_name, tags FROM contacts WHERE id = $1", known)
    assert renamed is not None
    assert (renamed["first_name"], list(renamed["tags"])) == ("Renamed", ["imported"])
    # The duplicate's contacts are untouched.
    assert await pool.fetchval("SELECT tags FROM contacts WHERE id = $1", one) == []


async def test_an_import_adds_its_contacts_to_its_campaign(pool: asyncpg.Pool[Any]) -> None:
    owner = await user(pool)
    account: UUID = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status)"
        " VALUES ($1, 'sim', 'simulated', 'active') RETURNING id",
        owner,
    )
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, telegram_account_id, flow, launch_type)"
        " VALUES ($1, 'Imported', $2, $3, 'manual') RETURNING id",
        owner,
        account,
        flow([SEND, END], [edge("hello", "end")]),
    )
    lines = "".join(f'{{"telegram_username": "jsonl_user{i}"}}\n' for i in range(5))
    text = lines + '{"telegram_username": "jsonl_user0", "nick": "x"}\n'
    action_id = await import_action(
        pool, owner, text, {"campaign_id": str(campaign)}, format=Format.JSONL
    )

    assert await run(pool, action_id) == 1

    got = await outcomes(pool, action_id)
    assert [o[:2] for o in got.values()] == [("succeeded", "created")] * 5 + [
        ("failed", "unknown_column")
    ]
    assert all(o[3]["campaign"] == "added" for o in list(got.values())[:5])
    enrolled = await pool.fetch(
        "SELECT contact_id FROM executions WHERE campaign_id = $1 AND deleted_at IS NULL",
        campaign,
    )
    assert {r["contact_id"] for r in enrolled} == {o[2] for o in list(got.values())[:5]}


@pytest.mark.parametrize("size", [1, 4096])
async def test_the_upload_is_the_same_however_it_is_cut(pool: asyncpg.Pool[Any], size: int) -> None:
    owner = await user(pool)
    import_id = uuid4()
    text = "phone,note\n" + "".join(f'+49151{i:07d},"a\nb"\n' for i in range(2500))
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO contact_imports (id, created_by, format, created_at)"
            " VALUES ($1, $2, 'csv', $3)",
            import_id,
            owner,
            NOW,
        )
        stored = await store(connection, import_id, Format.CSV, pieces(text, size))
    assert (stored["rows"], stored["columns"]) == (2500, ["phone", "note"])
    lines = [r["line"] for r in await pool.fetch(
        "SELECT line FROM contact_import_rows WHERE import_id = $1 ORDER BY line", import_id
    )]  # fmt: skip
    assert lines == list(range(2, 2 + 2 * 2500, 2))
