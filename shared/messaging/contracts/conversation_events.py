"""dripline.conversation.events: the unified inbox (docs/inbox.md), keyed by the conversation
id. A reply recorded in a conversation, and a conversation a person took over (its execution
holds until the conversation is released)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

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

EXAMPLE_CONVERSATION = "8e7d6c5b-4a39-4281-b7c6-d5e4f3a2b1c0"
EXAMPLE_USER = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"


class ConversationMessageReceived(Payload):
    conversation_id: UUID
    message_id: UUID
    telegram_account_id: UUID
    contact_id: UUID
    campaign_id: UUID | None
    execution_id: UUID | None
    body: str
    received_at: datetime
    unread_count: int


class ConversationTakenOver(Payload):
    conversation_id: UUID
    telegram_account_id: UUID
    contact_id: UUID
    campaign_id: UUID | None
    execution_id: UUID | None
    taken_over_by: UUID | None
    taken_over_at: datetime


ConversationEvent = ConversationMessageReceived | ConversationTakenOver

_T = Topic.CONVERSATION_EVENTS
MESSAGE_RECEIVED = Contract(
    _T,
    MessageType.CONVERSATION_MESSAGE_RECEIVED,
    1,
    ConversationMessageReceived,
    False,
    {
        "conversation_id": EXAMPLE_CONVERSATION,
        "message_id": EXAMPLE_MESSAGE,
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "contact_id": EXAMPLE_CONTACT,
        "campaign_id": EXAMPLE_CAMPAIGN,
        "execution_id": EXAMPLE_EXECUTION,
        "body": "Sounds good, tell me more",
        "received_at": "2026-01-05T10:00:00Z",
        "unread_count": 1,
    },
)
TAKEN_OVER = Contract(
    _T,
    MessageType.CONVERSATION_TAKEN_OVER,
    1,
    ConversationTakenOver,
    False,
    {
        "conversation_id": EXAMPLE_CONVERSATION,
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "contact_id": EXAMPLE_CONTACT,
        "campaign_id": EXAMPLE_CAMPAIGN,
        "execution_id": EXAMPLE_EXECUTION,
        "taken_over_by": EXAMPLE_USER,
        "taken_over_at": "2026-01-05T10:05:00Z",
    },
)
CONTRACTS: tuple[Contract[ConversationEvent], ...] = (MESSAGE_RECEIVED, TAKEN_OVER)
