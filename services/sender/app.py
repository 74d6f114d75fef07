"""The sender: runs executions through their flows and talks to Telegram."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from services.sender import accounts
from services.sender.simulator import SimulatedTelegram
from services.sender.steps import Steps
from services.sender.updates import apply_updates
from shared.messaging.contracts import MessageType
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic
from shared.runtime import Service, build_app
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    service = Service(
        "sender", settings, description="Runs executions through their flows; sends to Telegram."
    )
    # Only the simulator so far: Telethon accounts cannot be registered yet (see the API).
    gateway = SimulatedTelegram(lambda: service.pool)
    steps = Steps(gateway, lambda: service.pool, service.clock)
    service.handle(Topic.EXECUTIONS_DUE, MessageType.EXECUTION_DUE)(steps.on_due)

    @service.every_sweep("replies_and_reads")
    async def replies_and_reads(service: Service) -> int:
        async with service.pool.acquire() as connection, connection.transaction():
            outbox = Outbox()
            count = await apply_updates(connection, outbox, gateway, service.clock.now())
            await outbox.flush(connection)
        return count

    @service.every_sweep("health_checks")
    async def health_checks(service: Service) -> int:
        now = service.clock.now()
        stale = now - timedelta(seconds=settings.health_check_interval_s)
        async with service.pool.acquire() as connection, connection.transaction():
            outbox = Outbox()
            rows = await connection.fetch(accounts.QUERIES["accounts_to_probe"], stale)
            for row in rows:
                await accounts.check(connection, outbox, gateway, row, now)
            await outbox.flush(connection)
        return len(rows)

    return service


def create_app(settings: Settings) -> FastAPI:
    return build_app(create_service(settings), title="Dripline sender")
