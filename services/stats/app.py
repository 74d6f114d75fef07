"""The stats service: materialized statistics and the activity feed, from events."""

from __future__ import annotations

from fastapi import FastAPI

from services.stats import events
from shared.messaging.contracts import MessageType
from shared.messaging.topics import Topic
from shared.runtime import Service, build_app
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    service = Service("stats", settings, description="Materializes statistics from events.")
    on = service.handle
    on(Topic.CAMPAIGN_EVENTS, MessageType.CAMPAIGN_STATUS_CHANGED)(events.on_status_changed)
    on(Topic.CAMPAIGN_EVENTS, MessageType.CAMPAIGN_COMMAND_REJECTED)(events.on_command_rejected)
    return service


def create_app(settings: Settings) -> FastAPI:
    return build_app(create_service(settings), title="Dripline stats")
