"""The fleet circuit breaker, wired (issue 14, item 4; the rule is shared/domain/breaker.py):
when most of a context's sending accounts (an organization's, or a user's in personal mode) are
limited, frozen or cooling down within the last hour, its sending pauses by itself; it resumes
when enough of them are healthy again.

Evaluated here, in the scheduler, rather than in the sender's transaction that changed the
health: that transaction may lock several accounts one after another (a batch's answers), so a
breaker lock taken in it could sit between two account locks and deadlock with another batch.
Here the breaker row is the last lock a transaction takes: the consumer evaluates the contexts a
batch of `account.health_changed` events touched once, before the batch commits, in a fixed
order; the sweep evaluates one context per transaction and takes no other lock. The accounts
are read (not locked) after the breaker row is locked, so two evaluations of one context take
turns and the second sees what the first committed.

The sweep (every scheduler sweep) evaluates the paused contexts, so the window's end resets a
breaker with no health change, and, once a minute (RESWEEP), those with an account in trouble
within the hour, so a policy or a fleet changed through the API is seen; it keeps the
dripline_fleet_breakers_tripped gauge current.

Its effect is elsewhere: the sender defers a paused context's sends before reserving them
(services/sender/reservations.py), dispatch skips its executions (dispatch.sql, claim_due), and
the API shows the reason on its campaigns (`sending_paused_reason`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from uuid import UUID

from prometheus_client import Gauge

from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.accounts import AccountHealth
from shared.domain.breaker import WINDOW, FleetAccount, decide, policy_of
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import AccountHealthChanged, Decoded
from shared.messaging.contracts.organization_events import (
    SENDING_PAUSED,
    SENDING_RESUMED,
    SendingChanged,
)
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import transaction
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
# A count, not a label per organization: one series whatever the number of organizations. Which
# ones are paused is in the events and in the fleet_breakers table.
TRIPPED = Gauge(
    "dripline_fleet_breakers_tripped",
    "Organizations (and personal-mode users) whose sending the fleet breaker has paused",
)
_KEY = "fleet_breakers"
# How often the sweep evaluates a breaker that is not paused but has accounts in trouble (a
# paused one: every sweep). It catches what no health event reports: a policy changed, accounts
# deleted or added through the API.
RESWEEP = timedelta(seconds=60)


class Context(NamedTuple):
    """An organization (user_id None), or a user in personal mode (organization_id None)."""

    organization_id: UUID | None
    user_id: UUID | None

    def sort_key(self) -> tuple[str, str]:
        return (str(self.organization_id or ""), str(self.user_id or ""))


async def evaluate(
    connection: DbConnection, outbox: Outbox, context: Context, now: datetime
) -> bool | None:
    """Decide the context's breaker now and record it; emits an event when it trips or resets.
    Returns whether sending is paused now if that changed, else None."""
    organization_id, user_id = context
    await connection.execute(QUERIES["ensure_breaker"], organization_id, user_id, now)
    breaker = await connection.fetchrow(QUERIES["lock_breaker"], organization_id, user_id)
    assert breaker is not None
    settings = None
    if organization_id is not None:
        settings = await connection.fetchval(QUERIES["organization_settings"], organization_id)
    policy = policy_of(settings)
    accounts = [
        FleetAccount(AccountHealth(r["health_status"]), r["troubled_at"])
        for r in await connection.fetch(QUERIES["fleet"], organization_id, user_id)
    ]
    was_paused = breaker["tripped_at"] is not None
    decision = decide(accounts, now, paused=was_paused, policy=policy)
    tripped_at = (breaker["tripped_at"] or now) if decision.paused else None
    await connection.execute(
        QUERIES["set_breaker"], breaker["id"], tripped_at, decision.reason,
        decision.troubled, decision.sending, now,
    )  # fmt: skip
    if decision.paused == was_paused:
        return None
    event = SendingChanged(
        organization_id=organization_id,
        user_id=user_id,
        troubled=decision.troubled,
        sending=decision.sending,
        share=policy.share,
        reason=decision.reason,
        paused_since=tripped_at or breaker["tripped_at"],
    )
    contract = SENDING_PAUSED if decision.paused else SENDING_RESUMED
    outbox.emit(event, key=organization_id or user_id, type=contract.type.value, at=now)
    return decision.paused


class Touched:
    """The contexts a batch's health changes touched, evaluated once each before it commits."""

    def __init__(self, context: HandlerContext) -> None:
        self._context = context
        self.contexts: set[Context] = set()

    async def __call__(self) -> None:
        connection, now = self._context.connection, self._context.clock.now()
        for context in sorted(self.contexts, key=Context.sort_key):
            await evaluate(connection, self._context.outbox, context, now)


async def on_health_changed(
    context: HandlerContext, message: Decoded[AccountHealthChanged]
) -> None:
    """Note the account's context for the batch's evaluation (before_commit, after every
    handler: the breaker lock comes after the campaign locks a dead account's event takes)."""
    row = await context.connection.fetchrow(
        QUERIES["account_context"], message.payload.telegram_account_id
    )
    if row is None:
        return
    touched = context.before_commit.get(_KEY)
    if not isinstance(touched, Touched):
        touched = Touched(context)
        context.before_commit[_KEY] = touched
    touched.contexts.add(Context(row["organization_id"], row["user_id"]))


async def sweep(service: Service) -> int:
    """The periodic evaluation: every paused context, and every one with an account in trouble
    within the hour not evaluated for RESWEEP, one transaction each; then the gauge. Returns
    the contexts evaluated."""
    now = service.clock.now()
    async with service.pool.acquire() as connection:
        rows = await connection.fetch(QUERIES["contexts_to_sweep"], now - WINDOW, now - RESWEEP)
    contexts = sorted({Context(r["organization_id"], r["user_id"]) for r in rows},
                      key=Context.sort_key)  # fmt: skip
    for context in contexts:
        async with transaction(service.pool, service.clock) as tx:
            await evaluate(tx.connection, tx.outbox, context, now)
    async with service.pool.acquire() as connection:
        TRIPPED.set(await connection.fetchval(QUERIES["tripped"]))
    return len(contexts)
