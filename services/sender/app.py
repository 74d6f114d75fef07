"""The sender: runs executions through their flows and talks to Telegram."""

from __future__ import annotations

import gc
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from services.sender import account_commands, accounts
from services.sender.gateway import Gateways
from services.sender.simulator import SimulatedTelegram
from services.sender.steps import Steps
from services.sender.telethon_gateway import TelethonTelegram
from services.sender.updates import apply_updates
from shared.db.sql import Queries
from shared.messaging.contracts import account_commands as account_contracts
from shared.messaging.contracts import executions_due
from shared.messaging.transaction import transaction
from shared.runtime import Service, build_app
from shared.settings import Settings

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


def create_service(settings: Settings) -> Service:
    service = Service(
        "sender", settings, description="Runs executions through their flows; sends to Telegram."
    )
    telethon = TelethonTelegram(lambda: service.pool, settings, service.clock)
    service.closers.append(telethon.close)
    gateway = Gateways({"simulated": SimulatedTelegram(lambda: service.pool), "telethon": telethon})
    steps = Steps(gateway, lambda: service.pool, service.clock)
    service.handle(executions_due.DUE)(steps.on_due)
    service.handle(account_contracts.CHECK_HEALTH)(account_commands.check_handler(gateway))

    @service.every_sweep("replies_and_reads")
    async def replies_and_reads(service: Service) -> int:
        async with transaction(service.pool, service.clock) as tx:
            detected = await apply_updates(tx.connection, tx.outbox, gateway, service.clock.now())
        detected.count()
        return detected.updates

    @service.every_sweep("health_checks")
    async def health_checks(service: Service) -> int:
        now = service.clock.now()
        stale = now - timedelta(seconds=settings.health_check_interval_s)
        async with transaction(service.pool, service.clock) as tx:
            rows = await tx.connection.fetch(QUERIES["accounts_to_probe"], stale)
            entered = [
                await accounts.check(tx.connection, tx.outbox, gateway, row, now) for row in rows
            ]
        accounts.count_transitions(entered)
        return len(rows)

    @service.every_sweep("account_gauges")
    async def account_gauges(service: Service) -> None:
        async with service.pool.acquire() as connection:
            await accounts.measure(connection)

    last_reconcile = [service.clock.now()]

    @service.every_sweep("reconcile_dialogs")
    async def reconcile_dialogs(service: Service) -> int:
        now = service.clock.now()
        if (now - last_reconcile[0]).total_seconds() < settings.telegram_reconcile_interval_s:
            return 0
        last_reconcile[0] = now
        return await telethon.reconcile(now)

    return service


def create_app(settings: Settings) -> FastAPI:
    """The sender's process (one per process)."""
    app = build_app(create_service(settings), title="Dripline sender")
    # Everything allocated so far (the modules, Telethon's schema, the service) lives as long as
    # the process: keep it out of the collector's full passes, which otherwise walk it again
    # every few batches of due events.
    gc.freeze()
    return app
