"""Account health as the sender sees it: transitions, their events, and the periodic check.

States (docs/accounts.md, "Health states"): active and warming send; cooldown waits until
cooldown_until and then returns to active; limited stops new peers until @SpamBot says it is
free or its stated date passes (asked on a backoff, 1 h doubling to 24 h); frozen stops every
send until help.getAppConfig no longer shows the freeze; disconnected is reconnected on an
exponential backoff with jitter; auth_lost, session_conflict and banned stop for good and need
a person. Every transition is an `account.health_changed` event with the reason; the
scheduler fails the campaigns of a dead account.

A transition is counted (dripline_telegram_account_transitions_total) once the transaction that
made it has committed, so a rolled-back and retried one counts once: the functions that change
health return the status entered, for their caller to count after its commit.

The periodic jobs: `health_checks` probes the accounts due a check, `account_gauges` sets the
accounts-by-health gauge.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prometheus_client import Counter, Gauge

from services.sender.gateway import (
    Account,
    AccountDead,
    AccountFrozen,
    AccountLimited,
    Gateway,
    RetryAfter,
    SessionElsewhere,
    Transient,
)
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.accounts import (
    NEEDS_A_PERSON,
    AccountHealth,
    after_drop,
    recheck_at,
    reconnect_delay,
)
from shared.domain.pacing import Pacing
from shared.messaging.contracts import AccountHealthChanged
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import transaction
from shared.runtime import Job, Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
DEAD = NEEDS_A_PERSON
# When a check that found the session held by another sender asks again.
ELSEWHERE_RECHECK = timedelta(seconds=60)

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
            rows = await tx.connection.fetch(QUERIES["accounts_to_probe"], stale, now)
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
    next_check_at: datetime | None = None,
    streak: int = 0,
    until: datetime | None = None,
    appeal_url: str | None = None,
) -> AccountHealth | None:
    """Record the account's health; returns the status entered, or None if it stayed.
    `next_check_at`: when the check is due again (None: the regular interval); `streak`: the
    checks in a row that found it so (the backoffs count them); `until` and `appeal_url`:
    what Telegram said of a limit or freeze."""
    current = await connection.fetchrow(QUERIES["account_health"], account_id)
    assert current is not None
    if current["health_status"] in DEAD and health not in DEAD:
        return None  # only a person (a new login) brings a dead account back
    await connection.execute(
        QUERIES["set_health"], account_id, health.value, detail, cooldown_until, now,
        next_check_at, streak, until, appeal_url,
    )  # fmt: skip
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
    """Probe one account and record what was found; returns the status entered, if it moved.

    A limited account is asked of @SpamBot (a plain probe succeeds on a limited account, so it
    cannot lift a limit), on a backoff; a frozen one is lifted only when getAppConfig no longer
    shows the freeze. A check that cannot reach Telegram leaves either state as it was."""
    account = Account(row["id"], row["session_kind"], row["simulation"])
    health = AccountHealth(row["health_status"])
    if health is AccountHealth.COOLDOWN and row["cooldown_until"] and row["cooldown_until"] > now:
        return None  # still waiting out a flood wait: nothing to ask
    streak = row["check_streak"]
    try:
        await gateway.probe(account, now, ask_spambot=health is AccountHealth.LIMITED)
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
        state = (
            AccountHealth.FROZEN if isinstance(limited, AccountFrozen) else AccountHealth.LIMITED
        )
        # The checks that have confirmed it (a send that met it confirmed nothing yet).
        confirmed = streak + 1 if health is state else 1
        return await change_health(
            connection,
            outbox,
            account.id,
            state,
            limited.reason,
            now,
            next_check_at=recheck_at(confirmed - 1, now, limited.until),
            streak=confirmed,
            until=limited.until,
            appeal_url=limited.appeal_url if isinstance(limited, AccountFrozen) else None,
        )
    except SessionElsewhere:
        # Another sender holds the session: it sends for the account and checks it. Asked
        # again in a while (and taken, if that sender has died meanwhile).
        await connection.execute(
            QUERIES["checked_elsewhere"], account.id, now, now + ELSEWHERE_RECHECK
        )
        return None
    except Transient as failure:
        if health in (AccountHealth.LIMITED, AccountHealth.FROZEN):
            # Telegram could not be asked: what it said last stands (lifting a limit on a
            # failed check would send a limited account back to cold messaging).
            await connection.execute(
                QUERIES["reschedule_check"],
                account.id,
                now,
                now + reconnect_delay(streak, random.random()),
            )
            return None
        failures = streak if health is AccountHealth.DISCONNECTED else 0
        return await change_health(
            connection,
            outbox,
            account.id,
            AccountHealth.DISCONNECTED,
            failure.reason,
            now,
            next_check_at=now + reconnect_delay(failures, random.random()),
            streak=failures + 1,
        )
    back = AccountHealth.ACTIVE
    if health is AccountHealth.WARMING or row["warm_up"]:
        pacing = Pacing.from_settings(row["pacing"], row["daily_quota"])
        if not pacing.warmed_up((now.date() - row["created_at"].date()).days):
            back = AccountHealth.WARMING  # still ramping up its daily budget
    return await change_health(connection, outbox, account.id, back, None, now)


async def connection_lost(
    connection: DbConnection, outbox: Outbox, account_id: UUID, reason: str, now: datetime
) -> AccountHealth | None:
    """A connection dropped and could not be restored (noticed by the adapter's watcher, when it
    happened): a sending account is disconnected and reconnected by its check on the backoff;
    any other state stays (after_drop)."""
    current = await connection.fetchrow(QUERIES["account_health"], account_id)
    if current is None:
        return None
    if after_drop(AccountHealth(current["health_status"])) is None:
        return None
    return await change_health(
        connection,
        outbox,
        account_id,
        AccountHealth.DISCONNECTED,
        reason,
        now,
        next_check_at=now + reconnect_delay(0, random.random()),
        streak=1,
    )
