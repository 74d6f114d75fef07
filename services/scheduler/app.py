"""The scheduler: single writer of campaign lifecycle state."""

from __future__ import annotations

from fastapi import FastAPI

from services.scheduler import (
    accounts,
    breakers,
    bulk_actions,
    bulk_operations,
    dispatch,
    lifecycle,
    metrics,
    recovery,
    runs,
)
from shared.messaging.contracts import account_events, bulk_commands, campaign_commands
from shared.runtime import Service, build_app
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    service = Service(
        "scheduler", settings, description="Applies campaign lifecycle commands; owns status."
    )
    for contract in campaign_commands.CONTRACTS:
        service.handle(contract)(lifecycle.on_command)
    service.handle(account_events.HEALTH_CHANGED)(accounts.on_health_changed)
    service.handle(account_events.CHECKED)(accounts.on_checked)
    service.handle(account_events.LOGIN_PROGRESSED)(accounts.on_login_progressed)
    service.handle(account_events.TEST_SENT)(accounts.on_test_sent)
    service.handle(bulk_commands.OPERATION_REQUESTED)(
        bulk_operations.request_handler(
            settings.bulk_batch_size, lambda: service.wake("bulk_operations")
        )
    )
    service.handle(bulk_commands.ACTION_REQUESTED)(bulk_operations.on_action_requested)
    service.every_sweep("bulk_operations")(bulk_operations.advance)
    service.every_sweep("bulk_actions")(bulk_actions.release_batches)
    service.every_sweep("start_scheduled")(dispatch.start_scheduled)
    # Dispatch runs more often than the other sweeps: its pause is what a waiting execution's
    # next step may be late by (issue 17, item 5; bench.precision).
    dispatch_every = min(settings.dispatch_interval_s, settings.sweep_interval_s)
    service.every_sweep("dispatch_due", interval_s=dispatch_every)(dispatch.dispatch_due)
    service.every_sweep("finish_runs")(runs.finish_runs)
    service.every_sweep("bulk_gauges")(metrics.measure_unfinished)
    service.every_sweep("lost_commands")(recovery.LostCommands())
    service.every_sweep("fleet_breakers")(breakers.sweep)
    return service


def create_app(settings: Settings) -> FastAPI:
    return build_app(create_service(settings), title="Dripline scheduler")
