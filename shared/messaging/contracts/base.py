"""What every contract module builds on: the payload base, the message types, and the contract
entry that ties a (topic, type, version) to its payload model and an example."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from shared.messaging.topics import Topic


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Covariant: a contract (or a decoded message) of one payload type is also one of any union
# that includes it, so a handler that takes a topic's union takes each of its contracts.
PayloadT_co = TypeVar("PayloadT_co", bound=Payload, covariant=True)


class MessageType(StrEnum):
    CAMPAIGN_LAUNCH = "campaign.launch"
    CAMPAIGN_PAUSE = "campaign.pause"
    CAMPAIGN_STOP = "campaign.stop"
    CAMPAIGN_ENABLE = "campaign.enable"
    CAMPAIGN_DISABLE = "campaign.disable"
    CAMPAIGN_DELETE = "campaign.delete"
    CAMPAIGN_RESTORE = "campaign.restore"
    CAMPAIGN_DUPLICATE = "campaign.duplicate"
    CAMPAIGN_ADD_CONTACTS = "campaign.add_contacts"
    CAMPAIGN_REMOVE_CONTACTS = "campaign.remove_contacts"
    CAMPAIGN_STATUS_CHANGED = "campaign.status_changed"
    CAMPAIGN_COMMAND_REJECTED = "campaign.command_rejected"
    CAMPAIGN_CONTACTS_ADDED = "campaign.contacts_added"
    CAMPAIGN_CONTACTS_REMOVED = "campaign.contacts_removed"
    CAMPAIGN_DUPLICATED = "campaign.duplicated"
    EXECUTION_DUE = "execution.due"
    EXECUTION_PROGRESSED = "execution.progressed"
    MESSAGE_SENT = "message.sent"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_DELIVERED = "message.delivered"
    REPLY_RECEIVED = "reply.received"
    ACCOUNT_HEALTH_CHANGED = "account.health_changed"
    ACCOUNT_CHECK_HEALTH = "account.check_health"
    ACCOUNT_CHECKED = "account.checked"
    ACCOUNT_LOGIN = "account.login"
    ACCOUNT_IMPORT_SESSION = "account.import_session"
    ACCOUNT_LOGIN_PROGRESSED = "account.login_progressed"
    BULK_OPERATION_REQUESTED = "bulk_operation.requested"
    BULK_OPERATION_PROGRESSED = "bulk_operation.progressed"
    BULK_OPERATION_COMPLETED = "bulk_operation.completed"
    BULK_ACTION_PROGRESSED = "bulk_action.progressed"
    BULK_ACTION_COMPLETED = "bulk_action.completed"
    OPPORTUNITY_STAGE_CHANGED = "opportunity.stage_changed"
    DO_NOT_CONTACT_ADD = "do_not_contact.add"
    DO_NOT_CONTACT_REMOVE = "do_not_contact.remove"
    DO_NOT_CONTACT_ADDED = "do_not_contact.added"
    DO_NOT_CONTACT_REMOVED = "do_not_contact.removed"
    CONTACT_COMMAND_REJECTED = "contact.command_rejected"
    CONTACT_UPSERT = "contact.upsert"
    CONTACT_ADD_TAGS = "contact.add_tags"
    CONTACT_REMOVE_TAGS = "contact.remove_tags"
    CONTACT_DELETE = "contact.delete"
    CONTACT_RESTORE = "contact.restore"
    CONTACT_CHANGED = "contact.changed"
    BULK_ACTION_CHANGED = "bulk_action.changed"
    CONVERSATION_SEND = "conversation.send"
    CONVERSATION_READ = "conversation.read"
    CONVERSATION_MESSAGE_RECEIVED = "conversation.message_received"
    CONVERSATION_TAKEN_OVER = "conversation.taken_over"
    BULK_ACTION_REQUESTED = "bulk_action.requested"
    BULK_ACTION_REJECTED = "bulk_action.rejected"
    ORGANIZATION_SENDING_PAUSED = "organization.sending_paused"
    ORGANIZATION_SENDING_RESUMED = "organization.sending_resumed"
    ACCOUNT_TEST_SEND = "account.test_send"
    ACCOUNT_TEST_SENT = "account.test_sent"


@dataclass(frozen=True)
class Contract(Generic[PayloadT_co]):
    topic: Topic
    type: MessageType
    version: int
    payload: builtins.type[PayloadT_co]
    requires_actor: bool
    example: dict[str, Any]


# The examples' ids, shared so that the examples of different topics describe one campaign.
EXAMPLE_CAMPAIGN = "0b9d3c3e-6f6e-4c1a-9a55-3f1f8a2b7c10"
EXAMPLE_COPY = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a99"
EXAMPLE_CONTACT = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"
EXAMPLE_EXECUTION = "5f0c1a7e-0d7b-4f7e-8b1e-1f0d3c2b4a50"
EXAMPLE_MESSAGE = "1d2c3b4a-5968-4776-8594-a3b2c1d0e9f8"
EXAMPLE_ACCOUNT = "9a1e2b3c-4d5e-4f60-8a7b-1c2d3e4f5a6b"
EXAMPLE_LOGIN = "6c5b4a39-2817-4f06-9e5d-4c3b2a190807"
EXAMPLE_OPERATION = "2e4c6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
EXAMPLE_BULK_ACTION = "8d7c6b5a-4939-4281-9a7b-6c5d4e3f2a1b"
