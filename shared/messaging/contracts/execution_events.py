"""dripline.execution.events: what happened to an execution and its messages, keyed by
campaign id."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.messaging.contracts.base import (
    EXAMPLE_ACCOUNT,
    EXAMPLE_CAMPAIGN,
    EXAMPLE_CONTACT,
    EXAMPLE_EXECUTION,
    EXAMPLE_MESSAGE,
    Contract,
    MessageType,
    Payload,
)
from shared.messaging.topics import Topic

ExecutionStatusName = Literal[
    "pending", "running", "waiting", "paused", "completed", "failed", "cancelled"
]


class ExecutionProgressed(Payload):
    execution_id: UUID
    campaign_id: UUID
    contact_id: UUID
    previous_status: ExecutionStatusName
    status: ExecutionStatusName
    node_id: str | None
    detail: str = ""


class MessageSent(Payload):
    message_id: UUID
    execution_id: UUID
    campaign_id: UUID
    contact_id: UUID
    telegram_account_id: UUID
    node_id: str
    variant: str | None = None


class MessageFailed(Payload):
    message_id: UUID | None
    execution_id: UUID
    campaign_id: UUID
    contact_id: UUID
    telegram_account_id: UUID
    node_id: str | None
    code: str = Field(description="contact_permanent, account_limited, account_dead, unknown")
    reason: str


class MessageDelivered(Payload):
    """Telegram has no delivery receipts for user chats: a read or a reply is the confirmation."""

    campaign_id: UUID
    execution_id: UUID
    message_ids: list[UUID]
    via: Literal["read", "reply"]


class ReplyReceived(Payload):
    message_id: UUID
    execution_id: UUID
    campaign_id: UUID
    contact_id: UUID
    telegram_account_id: UUID


# What a consumer of this topic may be handed: every event names its campaign and execution.
ExecutionEvent = (
    ExecutionProgressed | MessageSent | MessageFailed | MessageDelivered | ReplyReceived
)

_T = Topic.EXECUTION_EVENTS
CONTRACTS: tuple[Contract[ExecutionEvent], ...] = (
    Contract(
        _T,
        MessageType.EXECUTION_PROGRESSED,
        1,
        ExecutionProgressed,
        False,
        {
            "execution_id": EXAMPLE_EXECUTION,
            "campaign_id": EXAMPLE_CAMPAIGN,
            "contact_id": EXAMPLE_CONTACT,
            "previous_status": "pending",
            "status": "waiting",
            "node_id": "wait",
            "detail": "waiting for a reply",
        },
    ),
    Contract(
        _T,
        MessageType.MESSAGE_SENT,
        1,
        MessageSent,
        False,
        {
            "message_id": EXAMPLE_MESSAGE,
            "execution_id": EXAMPLE_EXECUTION,
            "campaign_id": EXAMPLE_CAMPAIGN,
            "contact_id": EXAMPLE_CONTACT,
            "telegram_account_id": EXAMPLE_ACCOUNT,
            "node_id": "hello",
            "variant": None,
        },
    ),
    Contract(
        _T,
        MessageType.MESSAGE_FAILED,
        1,
        MessageFailed,
        False,
        {
            "message_id": EXAMPLE_MESSAGE,
            "execution_id": EXAMPLE_EXECUTION,
            "campaign_id": EXAMPLE_CAMPAIGN,
            "contact_id": EXAMPLE_CONTACT,
            "telegram_account_id": EXAMPLE_ACCOUNT,
            "node_id": "hello",
            "code": "contact_permanent",
            "reason": "privacy restricted",
        },
    ),
    Contract(
        _T,
        MessageType.MESSAGE_DELIVERED,
        1,
        MessageDelivered,
        False,
        {
            "campaign_id": EXAMPLE_CAMPAIGN,
            "execution_id": EXAMPLE_EXECUTION,
            "message_ids": [EXAMPLE_MESSAGE],
            "via": "read",
        },
    ),
    Contract(
        _T,
        MessageType.REPLY_RECEIVED,
        1,
        ReplyReceived,
        False,
        {
            "message_id": EXAMPLE_MESSAGE,
            "execution_id": EXAMPLE_EXECUTION,
            "campaign_id": EXAMPLE_CAMPAIGN,
            "contact_id": EXAMPLE_CONTACT,
            "telegram_account_id": EXAMPLE_ACCOUNT,
        },
    ),
)
