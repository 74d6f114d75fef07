"""Account health as the sender sees it: transitions, their events, and the periodic check.

States (TELEGRAM.md): active and warming send; cooldown waits until cooldown_until and then
returns to active; limited stops new peers until a check clears it; disconnected retries;
auth_lost and banned stop for good and need a person. Every transition is an
`account.health_changed` event; the scheduler fails the campaigns of a dead account.

A transition is counted (dripline_telegram_account_transitions_total) once the transaction that
made it has committed, so a rolled-back and retried one counts once: the functions that change
health return the status entered, for their caller to count after its commit.

The periodic jobs: `health_checks` probes the accounts due a check, `account_gauges` sets the
accounts-by-health gauge.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prometheus_client import Counter, Gauge

from services.sender.gateway import (
    Account,
    AccountDead,
    AccountLimited,
    Gateway,
    RetryAfter,
    Transient,
)
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.accounts import AccountHealth
from shared.domain.pacing import Pacing
from shared.messaging.contracts import AccountHealthChanged
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import transaction
from shared.runtime import Job, Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
DEAD = frozenset({AccountHealth.AUTH_LOST, AccountHealth.BANNED})

TRANSITIONS = Counter(
    "dripline_telegram_account_transitions_total",
    "Telegram accounts' health changes, by the status entered",
    ["status"],
)
ACCOUNTS = Gauge(
    "dripline_telegram_accounts", "Telegram accounts (not deleted) by health status", ["status"]
)
for _health in AccountHealth:
    TRANSITIONS.labels(_health.value)  # from zero, so the first ban shows in rate()


def count_transitions(entered: list[AccountHealth | None]) -> None:
    """Count the transitions a committed transaction made (None: the status stayed)."""
    for health in entered:
        if health is not None:
            TRANSITIONS.labels(health.value).inc()


def health_checks(gateway: Gateway) -> Job:
    """The periodic job: probe the accounts not checked for `health_check_interval_s` (and
    those in a cooldown), in one transaction; returns how many were probed."""

    async def job(service: Service) -> int:
        now = service.clock.now()
        stale = now - timedelta(seconds=service.settings.health_check_interval_s)
        async with transaction(service.pool, service.clock) as tx:
            rows = await tx.connection.fetch(QUERIES["accounts_to_probe"], stale)
            entered = [await check(tx.connection, tx.outbox, gateway, row, now) for row in rows]
        count_transitions(entered)
        return len(rows)

    return job


async def account_gauges(service: Service) -> None:
    """The periodic job that keeps dripline_telegram_accounts current."""
    async with service.pool.acquire() as connection:
        await measure(connection)


async def measure(connection: DbConnection) -> None:
    """Set dripline_telegram_accounts from the table: every status, those with none at zero."""
    counts = {r["health_status"]: r["accounts"]
              for r in await connection.fetch(QUERIES["accounts_by_health"])}  # fmt: skip
    for health in AccountHealth:
        ACCOUNTS.labels(health.value).set(counts.get(health.value, 0))


async def change_health(
    connection: DbConnection,
    outbox: Outbox,
    account_id: UUID,
    health: AccountHealth,
    detail: str | None,
    now: datetime,
    *,
    cooldown_until: datetime | None = None,
) -> AccountHealth | None:
    """Record the account's health; returns the status entered, or None if it stayed."""
    current = await connection.fetchrow(QUERIES["account_health"], account_id)
    assert current is not None
    if current["health_status"] in DEAD and health not in DEAD:
        return None  # only a person (a new login) brings a dead account back
    await connection.execute(
        QUERIES["set_health"], account_id, health.value, detail, cooldown_until, now
    )
    if current["health_status"] != health.value or current["cooldown_until"] != cooldown_until:
        event = AccountHealthChanged(
            telegram_account_id=account_id,
            previous_status=current["health_status"],
            status=health.value,
            detail=detail,
            cooldown_until=cooldown_until,
        )
        outbox.emit(event, key=account_id, at=now)
    return health if current["health_status"] != health.value else None


async def check(
    connection: DbConnection, outbox: Outbox, gateway: Gateway, row: Any, now: datetime
) -> AccountHealth | None:
    """Probe one account and record what was found; returns the status entered, if it moved."""
    account = Account(row["id"], row["session_kind"], row["simulation"])
    health = AccountHealth(row["health_status"])
    if health is AccountHealth.COOLDOWN and row["cooldown_until"] and row["cooldown_until"] > now:
        return None  # still waiting out a flood wait: nothing to ask
    try:
        await gateway.probe(account, now)
    except AccountDead as dead:
        return await change_health(
            connection, outbox, account.id, AccountHealth(dead.kind), dead.reason, now
        )
    except RetryAfter as wait:
        until = now + timedelta(seconds=wait.seconds)
        return await change_health(
            connection,
            outbox,
            account.id,
            AccountHealth.COOLDOWN,
            wait.reason,
            now,
            cooldown_until=until,
        )
    except AccountLimited as limited:
        return await change_health(
            connection, outbox, account.id, AccountHealth.LIMITED, limited.reason, now
        )
    except Transient as failure:
        return await change_health(
            connection, outbox, account.id, AccountHealth.DISCONNECTED, failure.reason, now
        )
    back = AccountHealth.ACTIVE
    if health is AccountHealth.WARMING or row["warm_up"]:
        pacing = Pacing.from_settings(row["pacing"], row["daily_quota"])
        if not pacing.warmed_up((now.date() - row["created_at"].date()).days):
            back = AccountHealth.WARMING  # still ramping up its daily budget
    return await change_health(connection, outbox, account.id, back, None, now)
