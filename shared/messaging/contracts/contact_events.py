"""dripline.contact.events: changes to a do-not-contact list, keyed by the list (organization
id, or user id in personal mode), and the refusals of contact commands (the command's
correlation id tells the requester which)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.domain.do_not_contact import Kind, Reason, Source
from shared.messaging.contracts.base import EXAMPLE_CONTACT, Contract, MessageType, Payload
from shared.messaging.topics import Topic

EXAMPLE_ENTRY = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"
EXAMPLE_ORGANIZATION = "4b3a2918-0f1e-4d2c-8b3a-291807f6e5d4"


class DoNotContactAdded(Payload):
    entry_id: UUID
    organization_id: UUID | None
    user_id: UUID | None  # the list's owner in personal mode
    kind: Kind
    value: str
    reason: Reason
    source: Source
    contact_id: UUID | None = None
    added_by: UUID | None = None


class DoNotContactRemoved(Payload):
    entry_id: UUID
    organization_id: UUID | None
    user_id: UUID | None
    kind: Kind
    value: str


class ContactCommandRejected(Payload):
    """A contact command that was understood but may not be applied (the actor may not edit
    the list): a business refusal, not a dead letter."""

    command_type: str
    code: str
    message: str


ContactChange = Literal["created", "updated", "tags_added", "tags_removed", "deleted", "restored"]


class ContactChanged(Payload):
    """The answer to a contact command (with its correlation id): the contact as it now is.
    `change` says what the command did; an upsert or tag change that changed nothing is still
    answered (`updated`, or the tag change) so the requester is never left waiting."""

    contact_id: UUID
    external_id: str | None
    change: ContactChange
    telegram_username: str | None
    phone: str | None
    tags: list[str]
    deleted: bool
    time_zone: str | None = Field(default=None, description="The time zone given, if any.")


ContactEvent = DoNotContactAdded | DoNotContactRemoved | ContactCommandRejected | ContactChanged

ADDED = Contract(
    Topic.CONTACT_EVENTS,
    MessageType.DO_NOT_CONTACT_ADDED,
    1,
    DoNotContactAdded,
    False,
    {
        "entry_id": EXAMPLE_ENTRY,
        "organization_id": EXAMPLE_ORGANIZATION,
        "user_id": None,
        "kind": "username",
        "value": "alice_smith",
        "reason": "request",
        "source": "reply",
        "contact_id": EXAMPLE_CONTACT,
        "added_by": None,
    },
)
REMOVED = Contract(
    Topic.CONTACT_EVENTS,
    MessageType.DO_NOT_CONTACT_REMOVED,
    1,
    DoNotContactRemoved,
    False,
    {
        "entry_id": EXAMPLE_ENTRY,
        "organization_id": EXAMPLE_ORGANIZATION,
        "user_id": None,
        "kind": "username",
        "value": "alice_smith",
    },
)
REJECTED = Contract(
    Topic.CONTACT_EVENTS,
    MessageType.CONTACT_COMMAND_REJECTED,
    1,
    ContactCommandRejected,
    False,
    {
        "command_type": "do_not_contact.add",
        "code": "do_not_contact_forbidden",
        "message": "only owners and admins edit the organization's do-not-contact list",
    },
)
CHANGED = Contract(
    Topic.CONTACT_EVENTS,
    MessageType.CONTACT_CHANGED,
    1,
    ContactChanged,
    False,
    {
        "contact_id": EXAMPLE_CONTACT,
        "external_id": "crm-000417",
        "change": "created",
        "telegram_username": "alice_smith",
        "phone": "+4915123456789",
        "tags": ["crm", "q4"],
        "deleted": False,
        "time_zone": "Europe/Berlin",
    },
)
CONTRACTS: tuple[Contract[ContactEvent], ...] = (ADDED, REMOVED, REJECTED, CHANGED)
