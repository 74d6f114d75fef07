"""The stats service: materialized statistics and the activity feed, from events."""

from __future__ import annotations

from fastapi import FastAPI

from services.stats import events, reconcile
from shared.messaging.contracts import (
    account_events,
    bulk_events,
    campaign_events,
    execution_events,
    organization_events,
)
from shared.runtime import Service, build_app
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    service = Service("stats", settings, description="Materializes statistics from events.")
    # Every type of each consumed topic, each topic's contracts with the handler of its payloads.
    for contract in campaign_events.CONTRACTS:
        service.handle(contract)(events.on_campaign_events)
    for execution_contract in execution_events.CONTRACTS:
        service.handle(execution_contract)(events.on_execution_events)
    service.handle(account_events.HEALTH_CHANGED)(events.on_account_events)
    service.handle(account_events.CHECKED)(events.on_account_checked)
    service.handle(account_events.LOGIN_PROGRESSED)(events.on_account_checked)
    service.handle(account_events.TEST_SENT)(events.on_account_checked)
    for bulk_contract in bulk_events.CONTRACTS:
        service.handle(bulk_contract)(events.on_bulk_events)
    for organization_contract in organization_events.CONTRACTS:
        service.handle(organization_contract)(events.on_organization_events)
    service.every_sweep("reconcile_statistics")(reconcile.Reconciler())
    return service


def create_app(settings: Settings) -> FastAPI:
    return build_app(create_service(settings), title="Dripline stats")
