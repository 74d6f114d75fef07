"""A company-aware stop on reply (issue 19, item 5), applied by the sender's updates against a
real database: when one contact of a company replies in a campaign whose
`response_handling.stop_company_on_reply` is `stop` (or `pause`), the other contacts of the same
company in that campaign are cancelled (or paused) with the reason company_replied, logged, with
an event each, in the transaction that records the reply; contacts of another company, of no
company, or in another campaign are left alone, as is everyone with the setting off."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.sender.gateway import Incoming
from services.sender.updates import Detected, apply
from shared.messaging.outbox import Outbox
from tests.builders import FLOW

NOW = datetime.now(UTC).replace(microsecond=0)
REPLIED_AT = NOW + timedelta(seconds=5)


async def seed(pool: asyncpg.Pool[Any], mode: str | None) -> tuple[UUID, dict[str, UUID]]:
    """A campaign (the setting `mode`, None: not set) with: the replier (random id 1 sent to
    them) and two colleagues of company Acme (one waiting, one pending with a send queued), one
    already finished colleague, one contact of another company, one of none; and a second
    campaign with a colleague in it. Returns the account and the executions by name."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('o@example.com') RETURNING id")
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind,"
        " health_status) VALUES ($1, 'sim', 'simulated', 'active') RETURNING id",
        user,
    )
    acme, other_co = [
        await pool.fetchval(
            "INSERT INTO companies (owner_user_id, name) VALUES ($1, $2) RETURNING id", user, name
        )
        for name in ("Acme", "Globex")
    ]
    handling: dict[str, Any] = {"stop_on_reply": False}
    if mode is not None:
        handling["stop_company_on_reply"] = mode
    settings = {"response_handling": handling}
    campaigns = [
        await pool.fetchval(
            "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow,"
            " settings) VALUES ($1, $2, 'active', $3, $4, $5) RETURNING id",
            user,
            name,
            account,
            FLOW,
            settings,
        )
        for name in ("main", "elsewhere")
    ]
    people = {
        "replier": (acme, 0, "waiting"),
        "waiting": (acme, 0, "waiting"),
        "queued": (acme, 0, "pending"),
        "done": (acme, 0, "completed"),
        "globex": (other_co, 0, "waiting"),
        "nobody": (None, 0, "waiting"),
        "elsewhere": (acme, 1, "waiting"),
    }
    executions: dict[str, UUID] = {}
    for name, (company, campaign, status) in people.items():
        person = await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username, company_id)"
            " VALUES ($1, $2, $3) RETURNING id",
            user,
            f"{name}_person",
            company,
        )
        executions[name] = await pool.fetchval(
            "INSERT INTO executions (campaign_id, contact_id, status, current_node_id,"
            " started_at, next_execution_at) VALUES ($1, $2, $3, 'wait', $4, $4) RETURNING id",
            campaigns[campaign],
            person,
            status,
            NOW,
        )
    for name, status, random_id in (("replier", "sent", 1), ("queued", "queued", 2)):
        await pool.execute(
            "INSERT INTO messages (campaign_id, execution_id, contact_id, telegram_account_id,"
            " node_id, direction, body, status, random_id, telegram_message_id, sent_at)"
            " SELECT campaign_id, id, contact_id, $2, 'hello', 'outgoing', 'hi', $3, $4,"
            " CASE WHEN $3 = 'sent' THEN 10 END, CASE WHEN $3 = 'sent' THEN $5::timestamptz END"
            " FROM executions WHERE id = $1",
            executions[name],
            account,
            status,
            random_id,
            NOW,
        )
    return account, executions


async def reply(pool: asyncpg.Pool[Any], account: UUID, text: str = "Tell me more") -> Outbox:
    outbox = Outbox()
    async with pool.acquire() as connection, connection.transaction():
        update = Incoming("reply", account, 1, REPLIED_AT, text)
        await apply(connection, outbox, update, NOW, Detected())
    return outbox


async def statuses(pool: asyncpg.Pool[Any], executions: dict[str, UUID]) -> dict[str, Any]:
    rows = await pool.fetch("SELECT id, status, error_message FROM executions")
    by_id = {r["id"]: (r["status"], r["error_message"]) for r in rows}
    return {name: by_id[execution] for name, execution in executions.items()}


UNTOUCHED = {
    "done": ("completed", None),
    "globex": ("waiting", None),
    "nobody": ("waiting", None),
    "elsewhere": ("waiting", None),
}


@pytest.mark.parametrize(
    ("mode", "becomes"), [("stop", "cancelled"), ("pause", "paused")], ids=["stop", "pause"]
)
async def test_a_reply_stops_or_pauses_the_other_contacts_of_the_company_in_the_campaign(
    pool: asyncpg.Pool[Any], mode: str, becomes: str
) -> None:
    account, executions = await seed(pool, mode)

    outbox = await reply(pool, account)

    assert await statuses(pool, executions) == {
        "replier": ("waiting", None),  # the reply steers its own flow, not the company rule
        "waiting": (becomes, "company_replied"),
        "queued": (becomes, "company_replied"),
        **UNTOUCHED,
    }
    timing = await pool.fetch(
        "SELECT next_execution_at, completed_at FROM executions WHERE id = ANY($1::uuid[])",
        [executions["waiting"], executions["queued"]],
    )
    if becomes == "cancelled":
        assert all(r["next_execution_at"] is None and r["completed_at"] == NOW for r in timing)
    else:  # paused where they stand, as a campaign pause does
        assert all(r["next_execution_at"] == NOW and r["completed_at"] is None for r in timing)
    # The queued send of a stopped colleague went; a paused one keeps it, as a campaign pause
    # does (reconciled by its random id when it goes on). The reply is recorded.
    queued = await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'queued'")
    assert queued == (0 if becomes == "cancelled" else 1)
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE direction = 'incoming'") == 1
    logged = await pool.fetch(
        "SELECT execution_id, message, details FROM execution_logs"
        " WHERE event = 'company_replied' ORDER BY execution_id"
    )
    assert [(r["execution_id"], r["message"]) for r in logged] == sorted(
        [(executions["waiting"], becomes), (executions["queued"], becomes)]
    )
    details = logged[0]["details"]
    assert details["replied_execution_id"] == str(executions["replier"])
    progressed = [
        json.loads(record.value)["payload"]
        for record in outbox.records
        if record.headers["message-type"] == "execution.progressed"
    ]
    assert sorted((p["execution_id"], p["previous_status"], p["status"]) for p in progressed) == (
        sorted(
            [
                (str(executions["waiting"]), "waiting", becomes),
                (str(executions["queued"]), "pending", becomes),
            ]
        )
    )
    assert {p["detail"] for p in progressed} == {"company_replied"}
    # The recount of the campaign sees what the events name.
    by_status = await pool.fetchval(
        "SELECT s.by_status FROM campaigns c, get_campaign_statistics(c.id) s WHERE c.name = 'main'"
    )
    counts = json.loads(by_status) if isinstance(by_status, str) else by_status
    assert counts[becomes] == 2


@pytest.mark.parametrize("mode", [None, "off"], ids=["not set", "off"])
async def test_with_the_setting_off_a_reply_leaves_the_company_alone(
    pool: asyncpg.Pool[Any], mode: str | None
) -> None:
    account, executions = await seed(pool, mode)

    outbox = await reply(pool, account)

    assert await statuses(pool, executions) == {
        "replier": ("waiting", None),
        "waiting": ("waiting", None),
        "queued": ("pending", None),
        **UNTOUCHED,
    }
    assert not [r for r in outbox.records if r.headers["message-type"] == "execution.progressed"]


async def test_an_opt_out_reply_also_stops_the_company(pool: asyncpg.Pool[Any]) -> None:
    """The replier opts out (their executions end with do_not_contact) and the company rule
    still applies to the colleagues: both locked at once, in id order."""
    account, executions = await seed(pool, "stop")

    await reply(pool, account, "Please STOP")

    assert await statuses(pool, executions) == {
        "replier": ("completed", "opted_out"),
        "waiting": ("cancelled", "company_replied"),
        "queued": ("cancelled", "company_replied"),
        **UNTOUCHED,
    }
