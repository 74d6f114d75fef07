"""The sender: runs executions through their flows and talks to Telegram. This module only wires
the parts together: the due handler (due.py), and the periodic jobs beside what they do."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from services.sender import account_commands, accounts, conversations, logins, previews
from services.sender.due import Steps
from services.sender.gateway import Gateways
from services.sender.simulator import SimulatedTelegram
from services.sender.telethon_gateway import (
    TelethonTelegram,
    adopt_sessions,
    hand_over_sessions,
    reconcile_dialogs,
)
from services.sender.updates import replies_and_reads
from shared.messaging.contracts import account_commands as account_contracts
from shared.messaging.contracts import executions_due
from shared.runtime import Service, build_app
from shared.settings import Settings


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
    logins.trust_test_keys(settings)
    service.handle(account_contracts.LOGIN)(logins.login_handler(settings))
    service.handle(account_contracts.IMPORT_SESSION)(logins.import_handler(settings))
    service.handle(account_contracts.SEND_ANSWER)(
        conversations.send_handler(gateway, lambda: service.pool)
    )
    service.handle(account_contracts.READ)(conversations.read_handler(gateway))
    service.handle(account_contracts.TEST_SEND)(previews.test_send_handler(gateway))
    service.every_sweep("replies_and_reads")(replies_and_reads(gateway))
    service.every_sweep("health_checks")(accounts.health_checks(gateway))
    service.every_sweep("account_gauges")(accounts.account_gauges)
    service.every_sweep("adopt_sessions")(adopt_sessions(telethon, service.clock.now()))
    service.every_sweep("hand_over_sessions")(hand_over_sessions(telethon, service.clock.now()))
    service.every_sweep("reconcile_dialogs")(reconcile_dialogs(telethon, service.clock.now()))
    return service


def create_app(settings: Settings) -> FastAPI:
    """The sender's process (one per process)."""
    app = build_app(create_service(settings), title="Dripline sender")
    # Everything allocated so far (the modules, Telethon's schema, the service) lives as long as
    # the process: keep it out of the collector's full passes, which otherwise walk it again
    # every few batches of due events.
    gc.freeze()
    return app
