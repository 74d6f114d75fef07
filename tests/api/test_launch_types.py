"""Launch types through the real scheduler (issue 16, spec 004): "now" starts on the save that
makes it launchable; scheduled and recurring campaigns fire at their time in their time zone,
with the launch requirements checked again then; a run time that passed while no scheduler ran
is flagged, never started late unasked; a Waiting campaign can be stopped. The services' clock is
moved (shared/file_clock.py), never slept on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.api.conftest import Clock, Person, PersonFactory
from tests.builders import FLOW, account, add_contacts, command, contact, launchable, ok
from tests.support import eventually

# A Monday, 07:00 UTC: 08:00 in Berlin (winter time).
MONDAY = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def read(ann: Person, campaign_id: str) -> dict[str, Any]:
    return ok(await ann.client.get(f"/campaign-flows/{campaign_id}"))  # type: ignore[no-any-return]


async def until(ann: Person, campaign_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        found = await read(ann, campaign_id)
        return found if found["status"] == status else None

    return await eventually(reached)  # type: ignore[no-any-return]


async def a_few_sweeps() -> None:
    """Long enough for several scheduler sweeps (0.2 s apart in the tests' settings)."""
    await asyncio.sleep(1.5)


async def test_a_now_campaign_saved_ready_launches_at_once(ann: Person, clock: Clock) -> None:
    sender = await account(ann.client)
    person = await contact(ann.client, "nowready")
    created = ok(
        await ann.client.post(
            "/campaign-flows",
            json={
                "name": "Now",
                "launch_type": "now",
                "telegram_account_id": sender["id"],
                "flow": FLOW,
                "contact_ids": [person["id"]],
            },
        ),
        201,
    )
    launched = await until(ann, created["id"], "active")
    assert (launched["display_status"], launched["unmet_requirements"]) == ("Running", [])
    assert launched["launched_at"] is not None


async def test_a_now_campaign_waits_listing_what_is_missing_then_a_patch_launches_it(
    ann: Person, clock: Clock
) -> None:
    person = await contact(ann.client, "nowlater")
    created = ok(
        await ann.client.post(
            "/campaign-flows",
            json={"name": "Now later", "launch_type": "now", "contact_ids": [person["id"]]},
        ),
        201,
    )
    assert created["status"] == "draft"
    assert created["display_status"] == "Draft"
    assert [u["code"] for u in created["unmet_requirements"]] == ["account_missing", "flow_invalid"]
    sender = await account(ann.client)
    half = ok(
        await ann.client.patch(
            f"/campaign-flows/{created['id']}", json={"telegram_account_id": sender["id"]}
        )
    )
    assert half["status"] == "draft"
    assert [u["code"] for u in half["unmet_requirements"]] == ["flow_invalid"]
    await a_few_sweeps()
    assert (await read(ann, created["id"]))["status"] == "draft"
    # The edit that completes the requirements launches it.
    ok(await ann.client.patch(f"/campaign-flows/{created['id']}", json={"flow": FLOW}))
    assert (await until(ann, created["id"], "active"))["display_status"] == "Running"


async def test_a_now_campaign_met_by_other_means_is_ready_and_a_person_launches_it(
    ann: Person, clock: Clock
) -> None:
    sender = await account(ann.client)
    created = ok(
        await ann.client.post(
            "/campaign-flows",
            json={
                "name": "Now by hand",
                "launch_type": "now",
                "telegram_account_id": sender["id"],
                "flow": FLOW,
            },
        ),
        201,
    )
    assert [u["code"] for u in created["unmet_requirements"]] == ["no_contacts"]
    # Adding contacts is not a save of the definition: it shows Ready and waits for a person.
    await add_contacts(ann.client, created["id"], [(await contact(ann.client, "nowhand"))["id"]])
    await a_few_sweeps()
    ready = await read(ann, created["id"])
    assert (ready["status"], ready["display_status"], ready["unmet_requirements"]) == (
        "draft",
        "Ready",
        [],
    )
    assert ok(await command(ann.client, created["id"], "launch"))["status"] == "active"


async def test_a_scheduled_campaign_fires_at_its_time(ann: Person, clock: Clock) -> None:
    clock.set(MONDAY)
    at = MONDAY + timedelta(hours=1)
    once = await launchable(ann.client, "Once", launch_type="schedule", scheduled_at=at.isoformat())
    waiting = ok(await command(ann.client, once["id"], "launch"))
    assert (waiting["status"], waiting["display_status"]) == ("scheduled", "Waiting")
    clock.set(at - timedelta(seconds=1))
    await a_few_sweeps()
    assert (await read(ann, once["id"]))["status"] == "scheduled"
    clock.set(at)
    fired = await until(ann, once["id"], "active")
    assert (fired["next_run_at"], fired["missed_run_at"]) == (None, None)
    assert datetime.fromisoformat(fired["launched_at"]) == at


async def test_a_recurring_campaign_fires_at_its_local_time(
    ann: Person, clock: Clock, db: asyncpg.Pool[Any]
) -> None:
    clock.set(MONDAY)
    weekly = await launchable(
        ann.client,
        "Weekly nine",
        launch_type="recurring",
        recurrence="0 9 * * 1",
        timezone="Europe/Berlin",
    )
    waiting = ok(await command(ann.client, weekly["id"], "launch"))
    nine_in_berlin = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert datetime.fromisoformat(waiting["next_run_at"]) == nine_in_berlin
    clock.set(nine_in_berlin + timedelta(seconds=30))
    fired = await until(ann, weekly["id"], "active")
    assert fired["next_run_at"] is None
    # The run ends (the sender's work, done here by hand) and it waits for next Monday.
    await db.execute(
        "UPDATE executions SET status = 'completed' WHERE campaign_id = $1", weekly["id"]
    )
    again = await until(ann, weekly["id"], "scheduled")
    assert datetime.fromisoformat(again["next_run_at"]) == nine_in_berlin + timedelta(days=7)


async def test_a_campaign_that_cannot_start_at_its_time_fails_with_every_reason(
    ann: Person, clock: Clock, db: asyncpg.Pool[Any]
) -> None:
    clock.set(MONDAY)
    at = MONDAY + timedelta(minutes=30)
    once = await launchable(
        ann.client, "Doomed", launch_type="schedule", scheduled_at=at.isoformat()
    )
    ok(await command(ann.client, once["id"], "launch"))
    # After the launch, the account is banned and the contact removed.
    await db.execute(
        "UPDATE telegram_accounts SET health_status = 'banned' WHERE id = $1",
        once["telegram_account_id"],
    )
    await db.execute("UPDATE executions SET deleted_at = now() WHERE campaign_id = $1", once["id"])
    clock.set(at)
    failed = await until(ann, once["id"], "failed")
    assert failed["display_status"] == "Failed"
    reason = failed["failure_reason"]
    assert "account_unavailable" in reason, reason
    assert "no_contacts" in reason, reason
    assert failed["next_run_at"] is None


async def test_a_campaign_failed_at_its_time_relaunches_once_fixed_or_is_stopped_for_good(
    ann: Person, clock: Clock, db: asyncpg.Pool[Any]
) -> None:
    """Failed is no dead end (issue 16, item 2): with another account chosen, a launch starts it
    at once and its contacts are due; a stop ends a failed campaign for good."""
    clock.set(MONDAY)
    at = MONDAY + timedelta(minutes=30)
    fixed, ended = [
        await launchable(
            ann.client,
            f"Fails {name}",
            contacts=2,
            launch_type="schedule",
            scheduled_at=at.isoformat(),
        )
        for name in ("fixed", "ended")
    ]
    for each in (fixed, ended):
        ok(await command(ann.client, each["id"], "launch"))
        await db.execute(
            "UPDATE telegram_accounts SET health_status = 'banned' WHERE id = $1",
            each["telegram_account_id"],
        )
    clock.set(at)
    for each in (fixed, ended):
        failed = await until(ann, each["id"], "failed")
        assert "account_unavailable" in failed["failure_reason"], failed
        assert [u["code"] for u in failed["unmet_requirements"]] == ["account_unavailable"]

    # While its account is banned, the launch is refused with the requirement named.
    refused = await command(ann.client, fixed["id"], "launch")
    assert refused.status_code == 409, refused.text
    assert [e["code"] for e in refused.json()["errors"]] == ["account_unavailable"]
    # Another account is chosen while it is failed; the launch starts it at once.
    spare = await account(ann.client, "Spare")
    changed = ok(
        await ann.client.patch(
            f"/campaign-flows/{fixed['id']}", json={"telegram_account_id": spare["id"]}
        )
    )
    assert (changed["status"], changed["unmet_requirements"]) == ("failed", [])
    relaunched = ok(await command(ann.client, fixed["id"], "launch"))
    assert (relaunched["status"], relaunched["failure_reason"]) == ("active", None)
    rows = await db.fetch(
        "SELECT status, telegram_account_id FROM executions WHERE campaign_id = $1", fixed["id"]
    )
    assert [r["status"] for r in rows] == ["pending", "pending"]

    # A failed campaign stopped is cancelled, its executions with it, and stays so.
    stopped = ok(await command(ann.client, ended["id"], "stop"))
    assert (stopped["status"], stopped["display_status"]) == ("cancelled", "Stopped")
    rows = await db.fetch("SELECT status FROM executions WHERE campaign_id = $1", ended["id"])
    assert [r["status"] for r in rows] == ["cancelled", "cancelled"]
    again = await command(ann.client, ended["id"], "launch")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_status")


async def test_a_run_missed_while_the_scheduler_was_down_waits_for_a_person(
    ann: Person, clock: Clock
) -> None:
    clock.set(MONDAY)
    at = MONDAY + timedelta(hours=1)
    once = await launchable(
        ann.client, "Missed", launch_type="schedule", scheduled_at=at.isoformat()
    )
    weekly = await launchable(
        ann.client, "Missed weekly", launch_type="recurring", recurrence="0 9 * * *"
    )
    ok(await command(ann.client, once["id"], "launch"))
    ok(await command(ann.client, weekly["id"], "launch"))
    # The services' clock jumps six hours: no sweep of the scheduler ran between the two moments,
    # which is what a scheduler that was down through both run times sees when it is back. (The
    # shared scheduler is not restarted: a restarted consumer can wait a long time to rejoin its
    # group on the embedded broker, which left every later test in this session without one.)
    clock.set(MONDAY + timedelta(hours=6))

    async def flagged(campaign_id: str) -> dict[str, Any] | None:
        found = await read(ann, campaign_id)
        return found if found["missed_run_at"] else None

    missed = await eventually(lambda: flagged(once["id"]))
    assert (missed["status"], missed["display_status"]) == ("scheduled", "Waiting")
    assert datetime.fromisoformat(missed["missed_run_at"]) == at
    assert missed["next_run_at"] is None  # nothing fires late without a person's choice
    recurring = await eventually(lambda: flagged(weekly["id"]))
    assert datetime.fromisoformat(recurring["missed_run_at"]) == datetime(2026, 3, 2, 9, tzinfo=UTC)
    # A recurring campaign moves on to its next occurrence.
    assert datetime.fromisoformat(recurring["next_run_at"]) == datetime(2026, 3, 3, 9, tzinfo=UTC)
    listed = ok(await ann.client.get("/campaign-flows", params={"status": "scheduled"}))["items"]
    assert {c["id"]: c["missed_run_at"] is not None for c in listed} == {
        once["id"]: True,
        weekly["id"]: True,
    }
    await a_few_sweeps()
    assert (await read(ann, once["id"]))["status"] == "scheduled"

    # The person's choices: run it now, or reschedule it.
    ran = ok(await command(ann.client, once["id"], "run-now"))
    assert (ran["status"], ran["missed_run_at"], ran["next_run_at"]) == ("active", None, None)
    later = MONDAY + timedelta(days=1)
    moved = ok(
        await ann.client.patch(
            f"/campaign-flows/{weekly['id']}", json={"recurrence": "30 10 * * *"}
        )
    )
    assert moved["missed_run_at"] is None
    assert datetime.fromisoformat(moved["next_run_at"]) == later.replace(hour=10, minute=30)


async def test_a_waiting_campaign_can_be_stopped_singly_and_in_bulk(
    ann: Person, clock: Clock, db: asyncpg.Pool[Any]
) -> None:
    clock.set(MONDAY)
    at = (MONDAY + timedelta(days=1)).isoformat()
    waiting = [
        await launchable(ann.client, f"Waiting {i}", launch_type="schedule", scheduled_at=at)
        for i in range(3)
    ]
    for each in waiting:
        ok(await command(ann.client, each["id"], "launch"))
    disabled = ok(await command(ann.client, waiting[2]["id"], "disable"))
    # A disabled scheduled campaign will not fire: it is not shown Waiting.
    assert (disabled["status"], disabled["display_status"]) == ("scheduled", "Stopped")

    stopped = ok(await command(ann.client, waiting[0]["id"], "stop"))
    assert (stopped["status"], stopped["display_status"]) == ("cancelled", "Stopped")
    assert stopped["next_run_at"] is None
    rows = await db.fetch(
        "SELECT status, error_message FROM executions WHERE campaign_id = $1", waiting[0]["id"]
    )
    assert [(r["status"], r["error_message"]) for r in rows] == [
        ("cancelled", "Campaign stopped by user")
    ]

    bulk = ok(
        await ann.client.post(
            "/campaign-flows/bulk",
            json={
                "action": "stop",
                "campaign_ids": [waiting[1]["id"], waiting[2]["id"]],
                "wait": 30,
            },
        )
    )
    assert (bulk["total"], bulk["success_count"]) == (2, 2)
    for each in waiting[1:]:
        found = await read(ann, each["id"])
        assert (found["status"], found["next_run_at"]) == ("cancelled", None)
    # Nothing fires after the stop.
    clock.set(MONDAY + timedelta(days=1, minutes=1))
    await a_few_sweeps()
    assert {(await read(ann, w["id"]))["status"] for w in waiting} == {"cancelled"}
