"""The API service: HTTP in, commands out through the outbox."""

from __future__ import annotations

from fastapi import FastAPI

from services.api import (
    account_logins,
    api_keys,
    bulk_actions,
    bulk_operations,
    campaigns,
    companies,
    contacts,
    do_not_contact,
    logs,
    merge,
    organizations,
    pipelines,
    problems,
    statistics,
    telegram_accounts,
)
from services.api.guard import RequestGuard, ServerErrors
from services.api.idempotency import IdempotencyMiddleware
from services.api.replies import ReplyWaiter
from shared.messaging.contracts import contact_commands
from shared.runtime import Service, build_app
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    service = Service("api", settings, description="HTTP API; publishes commands.")
    # Other systems edit the do-not-contact list the API owns (group dripline.api).
    for contract in contact_commands.CONTRACTS:
        service.handle(contract)(do_not_contact.on_command)
    return service


def create_app(settings: Settings) -> FastAPI:
    service = create_service(settings)
    replies = ReplyWaiter()
    replies.subscribe(service.broker, settings)
    app = build_app(service, title="Dripline API", version="1")
    app.state.replies = replies
    problems.install(app)
    problems.document(app)
    # Middleware added last runs first. A handler's exception becomes a 500 answer before the
    # idempotency middleware sees it (so it releases the key); the outer ServerErrors catches
    # what the middleware themselves raise.
    app.add_middleware(ServerErrors)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        larger={
            "/contacts/import": settings.max_import_bytes,
            "/do-not-contact/import": settings.max_import_bytes,
        },
    )
    app.add_middleware(ServerErrors)
    # bulk_operations before campaigns: /campaign-flows/bulk is not a campaign id; merge before
    # contacts: /contacts/duplicates is not a contact id.
    for module in (organizations, api_keys, account_logins, telegram_accounts, merge, contacts,
                   companies, pipelines, do_not_contact,
                   bulk_operations, bulk_actions, statistics, logs, campaigns):  # fmt: skip
        app.include_router(module.router)
    return app
