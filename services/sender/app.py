"""The sender: talks to Telegram. Its consumers (due executions) arrive with the engine work;
for now it runs the common shell: health, metrics and its outbox relay."""

from __future__ import annotations

from fastapi import FastAPI

from shared.runtime import Service, build_app
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    return Service("sender", settings, description="Sends through Telegram accounts.")


def create_app(settings: Settings) -> FastAPI:
    return build_app(create_service(settings), title="Dripline sender")
