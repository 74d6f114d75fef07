"""dripline.account.events: a Telegram account's health, keyed by account id."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.messaging.contracts.base import EXAMPLE_ACCOUNT, Contract, MessageType, Payload
from shared.messaging.topics import Topic


class AccountHealthChanged(Payload):
    telegram_account_id: UUID
    previous_status: str
    status: str
    detail: str | None = None
    cooldown_until: datetime | None = None


class AccountChecked(Payload):
    """The answer to account.check_health, under its correlation id. A transition the check
    found is its own account.health_changed event, emitted before this one."""

    telegram_account_id: UUID
    result: Literal["checked", "not_checked", "not_found"] = Field(
        description="checked: probed and recorded; not_checked: a dead account (banned, or its "
        "login lost: a person must act) or one cooling down is not probed; not_found: no such "
        "account that the actor may see."
    )
    status: str | None = Field(description="The account's health after the check.")
    detail: str | None = None


# What a consumer of this topic may be handed.
AccountEvent = AccountHealthChanged | AccountChecked

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
CHECKED = Contract(
    Topic.ACCOUNT_EVENTS,
    MessageType.ACCOUNT_CHECKED,
    1,
    AccountChecked,
    False,
    {
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "result": "checked",
        "status": "active",
        "detail": None,
    },
)
CONTRACTS: tuple[Contract[AccountEvent], ...] = (HEALTH_CHANGED, CHECKED)
