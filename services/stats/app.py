"""The stats service: materialized statistics and the activity feed, from events."""

from __future__ import annotations

from fastapi import FastAPI

from services.stats import events, reconcile
from shared.messaging.consumer import Handler
from shared.messaging.contracts import contracts_on
from shared.messaging.topics import Topic
from shared.runtime import Service, build_app
from shared.settings import Settings

CONSUMES: dict[Topic, Handler] = {
    Topic.CAMPAIGN_EVENTS: events.on_campaign_events,
    Topic.EXECUTION_EVENTS: events.on_execution_events,
    Topic.ACCOUNT_EVENTS: events.on_account_events,
    Topic.BULK_EVENTS: events.on_bulk_events,
}


def create_service(settings: Settings) -> Service:
    service = Service("stats", settings, description="Materializes statistics from events.")
    for topic, handler in CONSUMES.items():
        for contract in contracts_on(topic):
            service.handle(topic, contract.type)(handler)
    service.every_sweep("reconcile_statistics")(reconcile.Reconciler())
    return service


def create_app(settings: Settings) -> FastAPI:
    return build_app(create_service(settings), title="Dripline stats")
