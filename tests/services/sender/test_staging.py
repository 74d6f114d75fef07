"""The sender's staging, without a database: which send record an execution stands on, and the
plan a step stages (its writes, and its events in the order they were staged)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.sender.staging import Loaded, Plan, random_id_for, send_key_at, skip, stage, stands_on
from shared.db.rows import ExecutionRow
from shared.domain import interpreter
from shared.domain.reach import Skip, SkipReason
from shared.messaging.contracts import ExecutionProgressed
from tests.builders import execution_row

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXECUTION = UUID("00000000-0000-0000-0000-0000000000e1")
# Fixed, not uuid4(): parametrized ids must be the same in every xdist worker.
OTHER_EXECUTION = UUID("00000000-0000-0000-0000-0000000000e2")


def loaded(node: str | None, sends: int, status: str = "pending") -> Loaded:
    row = ExecutionRow.from_row(
        execution_row(id=EXECUTION, status=status, current_node_id=node, next_execution_at=NOW)
    )
    state = interpreter.ExecutionState(execution_key="k", node_id=node)
    return Loaded(row, None, None, state, sends)


STANDS_ON = [
    # where the execution stands (node, sends so far), the record's key -> may the answer move it
    (("s1", 0), send_key_at(EXECUTION, "s1", 0), True),
    (("s2", 1), send_key_at(EXECUTION, "s2", 1), True),
    (("s2", 1), send_key_at(EXECUTION, "s1", 0), False),  # moved on since: a late answer
    (("s1", 1), send_key_at(EXECUTION, "s1", 0), False),  # same node, a later send
    (("s1", 0), send_key_at(OTHER_EXECUTION, "s1", 0), False),  # another execution's record
    ((None, 0), send_key_at(EXECUTION, "s1", 0), False),
]


@pytest.mark.parametrize(("where", "key", "moves"), STANDS_ON)
def test_an_answer_moves_only_the_execution_standing_on_its_record(
    where: tuple[str | None, int], key: str, moves: bool
) -> None:
    node, sends = where
    assert stands_on(loaded(node, sends), cast(asyncpg.Record, {"send_key": key})) is moves


def test_random_id_is_stable_per_send_and_fits_63_bits() -> None:
    first = random_id_for(send_key_at(EXECUTION, "s1", 0))
    assert first == random_id_for(send_key_at(EXECUTION, "s1", 0))
    assert first != random_id_for(send_key_at(EXECUTION, "s1", 1))
    assert 0 <= first < 2**63


def test_a_plan_holds_each_steps_writes_and_its_events_in_staged_order() -> None:
    plan = Plan()
    waiting = loaded("s1", 1)
    until = NOW + timedelta(hours=1)
    stage(plan, waiting, interpreter.Step(interpreter.Wait("s1", until), waiting.state), NOW)
    ended = loaded("s1", 1)
    gone = cast(asyncpg.Record, {"id": uuid4(), "status": "queued"})
    refused = Skip(SkipReason.CONTACT_DELETED, ends=True)
    send = interpreter.Step(interpreter.Send("s1", "hi"), ended.state)
    skip(plan, ended, send, refused, gone, NOW)

    saved = plan.executions[EXECUTION]
    assert (saved[1], saved[3]) == ("waiting", until)
    assert plan.skips[EXECUTION][1:3] == ("cancelled", None)
    assert plan.dropped == [gone["id"]]  # the ended execution's queued record goes
    assert [log[5] for log in plan.logs] == ["send_skipped"]
    statuses = [cast(ExecutionProgressed, payload).status for payload, _, _ in plan.events]
    assert statuses == ["waiting", "cancelled"]


def test_a_skip_that_waits_keeps_the_queued_record() -> None:
    plan = Plan()
    held = loaded("s1", 0)
    send = interpreter.Step(interpreter.Send("s1", "hi"), held.state)
    record = cast(asyncpg.Record, {"id": uuid4(), "status": "queued"})
    skip(plan, held, send, Skip(SkipReason.ACCOUNT_DELETED, ends=False), record, NOW)
    assert plan.skips[EXECUTION][1:5] == ("waiting", NOW, None, "account_deleted")
    assert plan.dropped == []
    [(event, key, at)] = plan.events
    assert (cast(ExecutionProgressed, event).status, key, at) == (
        "waiting",
        held.row.campaign_id,
        NOW,
    )
