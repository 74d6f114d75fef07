"""Lifecycle actions through HTTP: each a command the scheduler applies in one transaction, the
call answering with the campaign as it now stands (spec 001 "Campaign Actions")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.api.conftest import Person, PersonFactory
from tests.builders import FLOW, account, add_contacts, campaign, command, contact, launchable, ok
from tests.support import eventually


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def executions(db: asyncpg.Pool[Any], campaign_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT status, next_execution_at, completed_at, error_message, current_node_id"
        " FROM executions WHERE campaign_id = $1 ORDER BY created_at, id",
        campaign_id,
    )


async def test_launch_reports_every_unmet_requirement_at_once(ann: Person) -> None:
    bare = await campaign(ann.client, "Bare")
    disabled = ok(await command(ann.client, bare["id"], "disable"))
    assert disabled["enabled"] is False
    response = await command(ann.client, bare["id"], "launch")
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "launch_requirements_unmet"
    assert [e["code"] for e in problem["errors"]] == [
        "campaign_disabled",
        "account_missing",
        "no_contacts",
        "flow_invalid",
    ]
    assert ok(await ann.client.get(f"/campaign-flows/{bare['id']}"))["status"] == "draft"


async def test_launch_refuses_an_account_that_cannot_send(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Banned")
    # The sender's health check would find this (issue 4); here the state is set directly.
    await db.execute(
        "UPDATE telegram_accounts SET health_status = 'banned' WHERE id = $1",
        ready["telegram_account_id"],
    )
    response = await command(ann.client, ready["id"], "launch")
    assert response.status_code == 409
    assert [e["code"] for e in response.json()["errors"]] == ["account_unavailable"]
    detail = ok(await ann.client.get(f"/campaign-flows/{ready['id']}"))
    assert detail["telegram_account"]["health_status"] == "banned"
    assert detail["display_status"] == "Draft"  # no longer Ready


async def test_launch_makes_a_campaign_active_and_its_executions_due(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Go", contacts=2)
    assert ready["display_status"] == "Ready"
    launched = ok(await command(ann.client, ready["id"], "launch"))
    assert (launched["status"], launched["display_status"]) == ("active", "Running")
    assert launched["launched_at"] is not None
    rows = await executions(db, ready["id"])
    assert [r["status"] for r in rows] == ["pending", "pending"]
    again = await command(ann.client, ready["id"], "launch")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_status")


async def test_scheduled_and_recurring_launches_wait_for_their_time(ann: Person) -> None:
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    once = await launchable(ann.client, "Once", launch_type="schedule", scheduled_at=at.isoformat())
    waiting = ok(await command(ann.client, once["id"], "launch"))
    assert (waiting["status"], waiting["display_status"]) == ("scheduled", "Waiting")
    assert datetime.fromisoformat(waiting["next_run_at"]) == at

    weekly = await launchable(
        ann.client,
        "Weekly",
        launch_type="recurring",
        recurrence="0 9 * * 1",
        timezone="Europe/Berlin",
    )
    recurring = ok(await command(ann.client, weekly["id"], "launch"))
    assert recurring["status"] == "scheduled"
    next_run = datetime.fromisoformat(recurring["next_run_at"])
    local = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert next_run > datetime.now(UTC)


async def test_pause_keeps_next_execution_at_and_a_relaunch_resumes(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Pausing", contacts=2)
    ok(await command(ann.client, ready["id"], "launch"))
    later = datetime.now(UTC) + timedelta(hours=3)
    past = datetime.now(UTC) - timedelta(hours=3)
    first, second = await db.fetch(
        "SELECT id FROM executions WHERE campaign_id = $1 ORDER BY created_at, id", ready["id"]
    )
    await db.execute(
        "UPDATE executions SET next_execution_at = $2 WHERE id = $1", first["id"], later
    )
    await db.execute(
        "UPDATE executions SET next_execution_at = $2 WHERE id = $1", second["id"], past
    )

    paused = ok(await command(ann.client, ready["id"], "pause"))
    assert (paused["status"], paused["display_status"]) == ("paused", "Stopped")
    rows = await executions(db, ready["id"])
    assert [r["status"] for r in rows] == ["paused", "paused"]
    assert rows[0]["next_execution_at"] == later  # preserved
    assert (await command(ann.client, ready["id"], "pause")).json()["code"] == "invalid_status"

    resumed = ok(await command(ann.client, ready["id"], "launch"))
    assert resumed["status"] == "active"
    rows = await executions(db, ready["id"])
    assert [r["status"] for r in rows] == ["pending", "pending"]
    assert rows[0]["next_execution_at"] == later  # still in the future: kept
    assert rows[1]["next_execution_at"] > past + timedelta(hours=2)  # had passed: now


async def test_completed_executions_restart_only_when_asked(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Reset", contacts=2)
    ok(await command(ann.client, ready["id"], "launch"))
    ok(await command(ann.client, ready["id"], "pause"))
    await db.execute(
        "UPDATE executions SET status = 'completed', current_node_id = 'end', completed_at = now()"
        " WHERE id = (SELECT id FROM executions WHERE campaign_id = $1 ORDER BY created_at, id"
        " LIMIT 1)",
        ready["id"],
    )
    ok(await command(ann.client, ready["id"], "launch"))
    assert [r["status"] for r in await executions(db, ready["id"])] == ["completed", "pending"]
    ok(await command(ann.client, ready["id"], "pause"))
    ok(await command(ann.client, ready["id"], "launch", reset_completed="true"))
    rows = await executions(db, ready["id"])
    assert [r["status"] for r in rows] == ["pending", "pending"]
    assert rows[0]["current_node_id"] is None
    assert rows[0]["completed_at"] is None


async def test_stop_cancels_every_unfinished_execution(ann: Person, db: asyncpg.Pool[Any]) -> None:
    ready = await launchable(ann.client, "Stopping", contacts=3)
    ok(await command(ann.client, ready["id"], "launch"))
    await db.execute(
        "UPDATE executions SET status = 'completed', completed_at = now() WHERE id ="
        " (SELECT id FROM executions WHERE campaign_id = $1 ORDER BY created_at, id LIMIT 1)",
        ready["id"],
    )
    stopped = ok(await command(ann.client, ready["id"], "stop"))
    assert (stopped["status"], stopped["display_status"]) == ("cancelled", "Stopped")
    rows = await executions(db, ready["id"])
    assert [r["status"] for r in rows] == ["completed", "cancelled", "cancelled"]
    assert all(r["completed_at"] is not None for r in rows)
    assert [r["error_message"] for r in rows[1:]] == ["Campaign stopped by user"] * 2
    # Cancelled is final: no relaunch, no pause, no second stop.
    for action in ("launch", "pause", "stop"):
        assert (await command(ann.client, ready["id"], action)).json()["code"] == "invalid_status"
    draft = await campaign(ann.client, "Draft")
    assert (await command(ann.client, draft["id"], "stop")).json()["code"] == "invalid_status"


async def test_disable_cancels_executions_keeps_status_and_blocks_launch(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Disabling", contacts=2)
    ok(await command(ann.client, ready["id"], "launch"))
    disabled = ok(await command(ann.client, ready["id"], "disable"))
    assert (disabled["status"], disabled["enabled"]) == ("active", False)
    assert {r["status"] for r in await executions(db, ready["id"])} == {"cancelled"}

    ok(await command(ann.client, ready["id"], "pause"))
    refused = await command(ann.client, ready["id"], "launch")
    assert refused.status_code == 409
    assert [e["code"] for e in refused.json()["errors"]] == ["campaign_disabled"]

    enabled = ok(await command(ann.client, ready["id"], "enable"))
    assert (enabled["enabled"], enabled["status"]) == (True, "paused")
    # Enabling changes no execution: the cancelled ones stay cancelled.
    assert {r["status"] for r in await executions(db, ready["id"])} == {"cancelled"}


async def test_duplicate_makes_a_draft_copy_without_contacts(ann: Person) -> None:
    original = await launchable(
        ann.client,
        "Original",
        contacts=2,
        tags=["q4"],
        settings={"response_handling": {"stop_on_reply": False}},
    )
    ok(await command(ann.client, original["id"], "launch"))
    copy = ok(await command(ann.client, original["id"], "duplicate"), 201)
    assert copy["id"] != original["id"]
    assert copy["name"] == "Original (Copy)"
    assert (copy["status"], copy["enabled"], copy["has_contacts"]) == ("draft", True, False)
    for same in ("flow", "settings", "timezone", "telegram_account_id", "tags", "launch_type"):
        assert copy[same] == original[same], same
    contacts = ok(await ann.client.get(f"/campaign-flows/{copy['id']}/contacts"))
    assert contacts["items"] == []


async def test_a_stopped_campaign_runs_again_as_a_copy_of_its_unfinished_contacts(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    original = await launchable(ann.client, "Rerun", contacts=5)
    ok(await command(ann.client, original["id"], "launch"))
    # Only a stopped campaign is copied this way; an active one is launched, paused or stopped.
    early = await command(ann.client, original["id"], "copy-unfinished")
    assert (early.status_code, early.json()["code"]) == (409, "invalid_status")
    rows = await db.fetch(
        "SELECT id, contact_id FROM executions WHERE campaign_id = $1 ORDER BY created_at, id",
        original["id"],
    )
    done, failed, removed, *unfinished = rows
    await db.execute(
        "UPDATE executions SET status = 'completed', completed_at = now() WHERE id = $1",
        done["id"],
    )
    await db.execute(
        "UPDATE executions SET status = 'failed', completed_at = now() WHERE id = $1",
        failed["id"],
    )
    taken_out = await ann.client.request(
        "DELETE",
        f"/campaign-flows/{original['id']}/contacts",
        json={"contact_ids": [str(removed["contact_id"])]},
    )
    assert ok(taken_out)["removed"] == 1
    ok(await command(ann.client, original["id"], "stop"))

    copy = ok(await command(ann.client, original["id"], "copy-unfinished"), 201)
    assert copy["id"] != original["id"]
    assert (copy["name"], copy["status"], copy["has_contacts"]) == ("Rerun (Copy)", "draft", True)
    for same in ("flow", "settings", "telegram_account_id", "launch_type"):
        assert copy[same] == original[same], same
    enrolled = await db.fetch(
        "SELECT contact_id, status FROM executions WHERE campaign_id = $1 AND deleted_at IS NULL",
        copy["id"],
    )
    # Exactly the contacts that never finished: not the completed, failed or removed one.
    assert sorted(r["contact_id"] for r in enrolled) == sorted(r["contact_id"] for r in unfinished)
    assert {r["status"] for r in enrolled} == {"pending"}
    # The stopped campaign stays final, and the copy launches like any ready draft.
    kept = ok(await ann.client.get(f"/campaign-flows/{original['id']}"))
    assert kept["status"] == "cancelled"
    assert ok(await command(ann.client, copy["id"], "launch"))["status"] == "active"


async def test_delete_is_soft_refuses_active_and_restore_brings_it_back(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Deleting")
    ok(await command(ann.client, ready["id"], "launch"))
    active = await command(ann.client, ready["id"], "delete")
    assert (active.status_code, active.json()["code"]) == (409, "campaign_active")
    ok(await command(ann.client, ready["id"], "stop"))
    deleted = ok(await command(ann.client, ready["id"], "delete"))
    assert deleted["deleted_at"] is not None
    listed = ok(await ann.client.get("/campaign-flows"))["items"]
    assert ready["id"] not in [c["id"] for c in listed]
    with_deleted = ok(await ann.client.get("/campaign-flows", params={"include_deleted": "true"}))
    assert ready["id"] in [c["id"] for c in with_deleted["items"]]
    # Executions (and so statistics and logs) stay.
    assert len(await executions(db, ready["id"])) == 1
    assert await db.fetchval("SELECT deleted_by FROM campaigns WHERE id = $1", ready["id"]) == (
        ann.user_id
    )
    for action in ("launch", "enable", "duplicate"):
        response = await command(ann.client, ready["id"], action)
        assert response.json()["code"] == "campaign_deleted", action
    edit = await ann.client.patch(f"/campaign-flows/{ready['id']}", json={"name": "x"})
    assert edit.json()["code"] == "campaign_deleted"

    restored = ok(await command(ann.client, ready["id"], "restore"))
    assert restored["deleted_at"] is None
    assert restored["status"] == "cancelled"
    again = await command(ann.client, ready["id"], "restore")
    assert again.json()["code"] == "campaign_not_deleted"


async def test_a_deleted_account_fails_the_launch(ann: Person) -> None:
    ready = await launchable(ann.client, "Orphan")
    gone = await ann.client.delete(f"/telegram-accounts/{ready['telegram_account_id']}")
    assert gone.status_code == 204
    response = await command(ann.client, ready["id"], "launch")
    assert [e["code"] for e in response.json()["errors"]] == ["account_missing"]


async def test_a_deleted_accounts_executions_wait_and_its_campaigns_show_why(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    """Issue 15, item 1: deleting the account holds its unfinished executions (status kept,
    reason account_deleted, any claim released so an in-flight due event is stale) and the
    campaign says what blocks it; a finished execution keeps its outcome."""
    ready = await launchable(ann.client, "Held", contacts=2)
    assert ready["sending_blocked"] is None
    done, held = [
        str(r["contact_id"])
        for r in await db.fetch(
            "SELECT contact_id FROM executions WHERE campaign_id = $1 ORDER BY contact_id",
            ready["id"],
        )
    ]
    await db.execute(
        "UPDATE executions SET status = 'completed' WHERE campaign_id = $1 AND contact_id = $2",
        ready["id"],
        done,
    )
    await db.execute(
        "UPDATE executions SET lease_until = now() + interval '1 minute'"
        " WHERE campaign_id = $1 AND contact_id = $2",
        ready["id"],
        held,
    )
    gone = await ann.client.delete(f"/telegram-accounts/{ready['telegram_account_id']}")
    assert gone.status_code == 204

    after = {
        str(r["contact_id"]): r
        for r in await db.fetch(
            "SELECT contact_id, status, error_message, lease_until FROM executions"
            " WHERE campaign_id = $1",
            ready["id"],
        )
    }
    assert (after[held]["status"], after[held]["error_message"]) == ("pending", "account_deleted")
    assert after[held]["lease_until"] is None
    assert (after[done]["status"], after[done]["error_message"]) == ("completed", None)
    shown = ok(await ann.client.get(f"/campaign-flows/{ready['id']}"))
    assert shown["sending_blocked"] == "account_deleted"


async def test_an_invalid_flow_blocks_the_launch(ann: Person, db: asyncpg.Pool[Any]) -> None:
    sender = await account(ann.client)
    draft = await campaign(ann.client, "No flow", telegram_account_id=sender["id"])
    someone = await contact(ann.client, "nofloweruser")
    await add_contacts(ann.client, draft["id"], [someone["id"]])
    response = await command(ann.client, draft["id"], "launch")
    assert [e["code"] for e in response.json()["errors"]] == ["flow_invalid"]
    ok(await ann.client.patch(f"/campaign-flows/{draft['id']}", json={"flow": FLOW}))
    assert ok(await command(ann.client, draft["id"], "launch"))["status"] == "active"


@pytest.mark.parametrize("action", ["launch", "pause", "stop", "enable", "disable", "restore"])
async def test_unknown_campaigns_are_not_found(ann: Person, action: str) -> None:
    response = await command(ann.client, "00000000-0000-0000-0000-000000000000", action)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def status_of(ann: Person, campaign_id: str) -> dict[str, Any]:
    return ok(await ann.client.get(f"/campaign-flows/{campaign_id}"))  # type: ignore[no-any-return]


async def test_a_finished_run_completes_the_campaign_unless_it_is_disabled(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    finished = await launchable(ann.client, "Finished", contacts=2)
    halted = await launchable(ann.client, "Halted")
    for ready in (finished, halted):
        ok(await command(ann.client, ready["id"], "launch"))
    ok(await command(ann.client, halted["id"], "disable"))  # cancels its executions
    # The engine (issue 4) finishes executions; here they are set directly.
    await db.execute(
        "UPDATE executions SET status = 'completed', completed_at = now() WHERE campaign_id = $1",
        finished["id"],
    )

    async def done() -> dict[str, Any] | None:
        campaign = await status_of(ann, finished["id"])
        return campaign if campaign["status"] == "completed" else None

    campaign = await eventually(done)
    assert campaign["display_status"] == "Done"
    assert campaign["completed_at"] is not None
    # The same sweep saw the disabled campaign and left its status alone (spec 001, disable).
    assert (await status_of(ann, halted["id"]))["status"] == "active"


async def test_a_recurring_campaign_returns_to_scheduled_after_each_run(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    weekly = await launchable(
        ann.client,
        "Weekly run",
        launch_type="recurring",
        recurrence="0 9 * * 1",
        timezone="Europe/Berlin",
    )
    assert ok(await command(ann.client, weekly["id"], "launch"))["status"] == "scheduled"
    # The engine fires the occurrence and runs the executions (issue 4); simulated here.
    await db.execute("UPDATE campaigns SET status = 'active' WHERE id = $1", weekly["id"])
    await db.execute(
        "UPDATE executions SET status = 'completed' WHERE campaign_id = $1", weekly["id"]
    )

    async def rescheduled() -> dict[str, Any] | None:
        campaign = await status_of(ann, weekly["id"])
        return campaign if campaign["status"] == "scheduled" else None

    campaign = await eventually(rescheduled)
    next_run = datetime.fromisoformat(campaign["next_run_at"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (next_run.weekday(), next_run.hour) == (0, 9)
    assert campaign["completed_at"] is None
