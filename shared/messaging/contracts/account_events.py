"""dripline.account.events: a Telegram account's health, keyed by account id."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.messaging.contracts.base import EXAMPLE_ACCOUNT, Contract, MessageType, Payload
from shared.messaging.topics import Topic


class AccountHealthChanged(Payload):
    telegram_account_id: UUID
    previous_status: str
    status: str
    detail: str | None = None
    cooldown_until: datetime | None = None


HEALTH_CHANGED = Contract(
    Topic.ACCOUNT_EVENTS,
    MessageType.ACCOUNT_HEALTH_CHANGED,
    1,
    AccountHealthChanged,
    False,
    {
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "previous_status": "active",
        "status": "cooldown",
        "detail": "flood wait of 120 s",
        "cooldown_until": "2026-11-22T10:02:00Z",
    },
)
CONTRACTS: tuple[Contract[AccountHealthChanged], ...] = (HEALTH_CHANGED,)
