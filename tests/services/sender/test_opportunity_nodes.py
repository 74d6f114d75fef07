"""A flow's set_opportunity_stage node and opportunity_stage condition (issue 19, item 3),
applied by the sender against a real database: when the contact replies, a condition reads the
stage their opportunity stands in (loaded with the execution), and the node moves it (or creates
it) in the reply's transaction, with an `opportunity.stage_changed` event (source flow), as the
bulk upsert does; one already there is left without an event, and a stage removed since the
flow was saved changes nothing and is logged skipped."""

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

NOW = datetime.now(UTC).replace(microsecond=0)
REPLIED_AT = NOW + timedelta(seconds=5)


def flow(pipeline: UUID, won: UUID, qualified: UUID) -> dict[str, Any]:
    """Waits for a reply; on one: already won? then done, else moved to qualified."""
    return {
        "start": "w",
        "nodes": [
            {"id": "w", "type": "wait_for_reply", "timeout_seconds": 3600},
            {
                "id": "won?",
                "type": "condition",
                "condition": {
                    "kind": "opportunity_stage",
                    "pipeline_id": str(pipeline),
                    "stage_id": str(won),
                },
            },
            {
                "id": "qualify",
                "type": "set_opportunity_stage",
                "pipeline_id": str(pipeline),
                "stage_id": str(qualified),
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "w", "to": "won?", "when": "replied"},
            {"from": "w", "to": "end", "when": "timed_out"},
            {"from": "won?", "to": "end", "when": "true"},
            {"from": "won?", "to": "qualify", "when": "false"},
            {"from": "qualify", "to": "end"},
        ],
    }


async def seed(pool: asyncpg.Pool[Any], standing: str | None) -> dict[str, UUID]:
    """A personal-mode user with a pipeline (new, qualified, won), a contact waiting for a reply
    in a campaign of that flow (random id 1 sent to them), with an opportunity in the stage
    `standing` (None: none)."""
    ids: dict[str, UUID] = {}
    ids["user"] = await pool.fetchval(
        "INSERT INTO users (email) VALUES ('o@example.com') RETURNING id"
    )
    ids["account"] = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind,"
        " health_status) VALUES ($1, 'sim', 'simulated', 'active') RETURNING id",
        ids["user"],
    )
    ids["pipeline"] = await pool.fetchval(
        "INSERT INTO pipelines (owner_user_id, name) VALUES ($1, 'Sales') RETURNING id",
        ids["user"],
    )
    for position, name in enumerate(("new", "qualified", "won")):
        ids[name] = await pool.fetchval(
            "INSERT INTO pipeline_stages (pipeline_id, name, position) VALUES ($1, $2, $3)"
            " RETURNING id",
            ids["pipeline"],
            name.title(),
            position,
        )
    ids["contact"] = await pool.fetchval(
        "INSERT INTO contacts (owner_user_id, telegram_username, first_name)"
        " VALUES ($1, 'lead_person', 'Lena') RETURNING id",
        ids["user"],
    )
    if standing is not None:
        ids["opportunity"] = await pool.fetchval(
            "INSERT INTO opportunities (pipeline_id, contact_id, stage_id, name, created_by)"
            " VALUES ($1, $2, $3, 'Deal', $4) RETURNING id",
            ids["pipeline"],
            ids["contact"],
            ids[standing],
            ids["user"],
        )
    ids["campaign"] = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow, settings)"
        " VALUES ($1, 'Leads', 'active', $2, $3, $4) RETURNING id",
        ids["user"],
        ids["account"],
        flow(ids["pipeline"], ids["won"], ids["qualified"]),
        {"response_handling": {"stop_on_reply": False}},
    )
    context = {
        "flow": {
            "wait_until": (NOW + timedelta(hours=1)).isoformat(),
            "last_sent_at": (NOW - timedelta(minutes=1)).isoformat(),
            "sends": 1,
            "tags": [],
        }
    }
    ids["execution"] = await pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status, current_node_id, started_at,"
        " next_execution_at, context) VALUES ($1, $2, 'waiting', 'w', $3, $4, $5) RETURNING id",
        ids["campaign"],
        ids["contact"],
        NOW,
        NOW + timedelta(hours=1),
        context,
    )
    await pool.execute(
        "INSERT INTO messages (campaign_id, execution_id, contact_id, telegram_account_id,"
        " node_id, direction, body, status, random_id, telegram_message_id, sent_at)"
        " VALUES ($1, $2, $3, $4, 'w', 'outgoing', 'hi', 'sent', 1, 10, $5)",
        ids["campaign"],
        ids["execution"],
        ids["contact"],
        ids["account"],
        NOW,
    )
    return ids


async def reply(pool: asyncpg.Pool[Any], ids: dict[str, UUID]) -> list[dict[str, Any]]:
    """The contact replies; the stage-change events the reply's transaction wrote."""
    outbox = Outbox()
    async with pool.acquire() as connection, connection.transaction():
        update = Incoming("reply", ids["account"], 1, REPLIED_AT, "Sounds interesting")
        await apply(connection, outbox, update, NOW, Detected())
    return [
        json.loads(record.value)["payload"]
        for record in outbox.records
        if record.headers["message-type"] == "opportunity.stage_changed"
    ]


async def opportunities(pool: asyncpg.Pool[Any], ids: dict[str, UUID]) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        "SELECT id, stage_id, name, status, created_by FROM opportunities WHERE contact_id = $1",
        ids["contact"],
    )
    return [tuple(r) for r in rows]


@pytest.mark.parametrize(
    ("standing", "moved"),
    [(None, True), ("new", True), ("qualified", False), ("won", False)],
    ids=["none: created", "new: moved", "qualified: already there", "won: the condition"],
)
async def test_a_reply_moves_the_opportunity_unless_the_condition_finds_it_won(
    pool: asyncpg.Pool[Any], standing: str | None, moved: bool
) -> None:
    ids = await seed(pool, standing)

    events = await reply(pool, ids)

    execution = await pool.fetchrow(
        "SELECT status, current_node_id FROM executions WHERE id = $1", ids["execution"]
    )
    assert execution is not None
    assert (execution["status"], execution["current_node_id"]) == ("completed", "end")
    rows = await opportunities(pool, ids)
    assert len(rows) == 1
    opportunity, stage, name, status, created_by = rows[0]
    expected_stage = "qualified" if standing != "won" else "won"
    assert stage == ids[expected_stage]
    assert status == "open"
    if standing is None:  # created: named after the contact, by the campaign's creator
        assert (name, created_by) == ("Lena", ids["user"])
    else:
        assert opportunity == ids["opportunity"]
    if not moved:
        assert events == []
        return
    assert len(events) == 1
    event = events[0]
    assert (event["opportunity_id"], event["stage_id"], event["stage_name"]) == (
        str(opportunity),
        str(ids["qualified"]),
        "Qualified",
    )
    assert event["previous_stage_id"] == (str(ids[standing]) if standing else None)
    assert (event["source"], event["campaign_id"], event["execution_id"]) == (
        "flow",
        str(ids["campaign"]),
        str(ids["execution"]),
    )
    logged = await pool.fetch(
        "SELECT node_id, status, message FROM execution_logs"
        " WHERE execution_id = $1 AND node_type = 'set_opportunity_stage'",
        ids["execution"],
    )
    assert [tuple(r) for r in logged] == [("qualify", "ok", f"stage {ids['qualified']}")]


async def test_a_stage_removed_since_the_flow_was_saved_changes_nothing(
    pool: asyncpg.Pool[Any],
) -> None:
    ids = await seed(pool, None)
    await pool.execute("DELETE FROM pipeline_stages WHERE id = $1", ids["qualified"])

    events = await reply(pool, ids)

    assert events == []
    assert await opportunities(pool, ids) == []
    status = await pool.fetchval("SELECT status FROM executions WHERE id = $1", ids["execution"])
    assert status == "completed"  # the flow goes on
    skipped = await pool.fetch(
        "SELECT node_id, message FROM execution_logs"
        " WHERE execution_id = $1 AND status = 'skipped'",
        ids["execution"],
    )
    assert [tuple(r) for r in skipped] == [("qualify", "stage_not_found")]
