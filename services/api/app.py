"""The API service: HTTP in, commands out through the outbox."""

from __future__ import annotations

from fastapi import FastAPI

from services.api import (
    account_logins,
    api_keys,
    attachments,
    bulk_actions,
    bulk_operations,
    campaigns,
    companies,
    contact_commands,
    contacts,
    conversations,
    do_not_contact,
    imports,
    logs,
    merge,
    organizations,
    pipelines,
    problems,
    statistics,
    telegram_accounts,
)
from services.api.bulk_actions import requests as bulk_requests
from services.api.guard import RequestGuard, ServerErrors
from services.api.idempotency import IdempotencyMiddleware
from services.api.replies import ReplyWaiter
from services.api.shedding import LoadShedding
from shared.messaging.contracts import bulk_commands
from shared.messaging.contracts import contact_commands as contact_contracts
from shared.runtime import Service, build_app
from shared.settings import Settings


def create_service(settings: Settings) -> Service:
    service = Service("api", settings, description="HTTP API; publishes commands.")
    # Other systems edit the do-not-contact list and the contacts the API owns (group
    # dripline.api; docs/kafka.md).
    for listed in contact_contracts.DO_NOT_CONTACT_CONTRACTS:
        service.handle(listed)(do_not_contact.on_command)
    for record in contact_contracts.RECORD_CONTRACTS:
        service.handle(record)(contact_commands.on_command)
    # Other systems ask for bulk actions over contacts (docs/kafka.md); the topic's bulk
    # operations are the scheduler's, taken here without effect.
    service.handle(bulk_commands.ACTION_REQUESTED)(bulk_requests.on_requested)
    service.handle(bulk_commands.OPERATION_REQUESTED)(bulk_requests.on_operation_requested)
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
            # the route answers attachment_too_large itself, the guard only bounds the read
            "/attachments": settings.max_attachment_bytes + 1,
        },
        streamed={"/imports": settings.max_bulk_import_bytes},
    )
    app.add_middleware(ServerErrors)
    # Outermost: a request the API cannot serve now is turned away before any work is done.
    app.add_middleware(
        LoadShedding,
        limit=settings.api_max_concurrent_requests,
        queue_wait_s=settings.api_queue_wait_s,
    )
    # bulk_operations before campaigns: /campaign-flows/bulk is not a campaign id; merge before
    # contacts: /contacts/duplicates is not a contact id.
    for module in (organizations, api_keys, account_logins, telegram_accounts, merge, contacts,
                   companies, pipelines, do_not_contact, conversations, attachments, imports,
                   bulk_operations, bulk_actions, statistics, logs, campaigns):  # fmt: skip
        app.include_router(module.router)
    return app
