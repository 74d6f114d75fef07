"""Message content end to end: a step with spintax, a fallback and a photo goes out through the
scheduler, the sender and the simulated Telegram, which records the photo with its caption."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.domain.templates import render
from tests.builders import END, FAST, add_contacts, contact, edge, flow, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
TEXT = "{Hi|Hello|Hey} {first_name|there}, a picture for you"


async def test_spintax_a_fallback_and_a_photo_go_out_through_the_simulator(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    photo = ok(
        await api.post("/attachments", content=PNG, headers={"Content-Type": "image/png"}), 201
    )
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": "Sim", "simulation": {}, "pacing": FAST},
        ),
        201,
    )
    send = {"id": "hello", "type": "send_message", "text": TEXT, "attachment_id": photo["id"]}
    created = ok(
        await api.post(
            "/campaign-flows",
            json={
                "name": "Content",
                "telegram_account_id": account["id"],
                "flow": flow([send, END], [edge("hello", "end")]),
            },
        ),
        201,
    )
    ada = await contact(api, "ada_content", first_name="Ada")
    nameless = [await contact(api, f"anon_content_{i}", first_name=None) for i in range(2)]
    people = [ada, *nameless]
    await add_contacts(api, created["id"], [p["id"] for p in people])
    # Three sends through the zero-latency simulator can all be made before the answer to the
    # launch is read back: completed is as right as active here.
    launched = ok(await api.post(f"/campaign-flows/{created['id']}/launch"))
    assert launched["status"] in ("active", "completed")

    seen: list[Any] = []

    async def finished() -> Any:
        rows = await pool.fetch(
            "SELECT status, error_message FROM executions WHERE campaign_id = $1",
            created["id"],
        )
        seen[:] = [(r["status"], r["error_message"]) for r in rows]
        done = all(r["status"] in ("completed", "failed", "cancelled") for r in rows)
        return [(r["status"], r["error_message"]) for r in rows] if rows and done else None

    try:
        outcomes = await eventually(finished, timeout_s=120)
    except AssertionError:
        raise AssertionError(f"executions: {seen}") from None
    assert outcomes == [("completed", None)] * len(people)
    rows = await pool.fetch(
        "SELECT c.id AS contact_id, c.first_name, s.body, s.attachment_id"
        " FROM messages m JOIN contacts c ON c.id = m.contact_id"
        " JOIN simulator_messages s"
        "   ON s.account_id = m.telegram_account_id AND s.random_id = m.random_id"
        " WHERE m.campaign_id = $1 AND m.direction = 'outgoing'",
        created["id"],
    )
    assert len(rows) == len(people)  # each once
    for row in rows:
        assert str(row["attachment_id"]) == photo["id"]
        greeting, name = row["body"].split(",")[0].split(" ")
        assert greeting in ("Hi", "Hello", "Hey")
        assert name == (row["first_name"] or "there")
        # The same text a resend would render: per contact and step, not per attempt.
        seed = f"{row['contact_id']}:hello"
        assert row["body"] == render(TEXT, {"first_name": row["first_name"]}, seed)
    assert sum(r["first_name"] is None for r in rows) == len(nameless)
