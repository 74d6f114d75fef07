"""dripline.contact.commands: other systems' changes to contacts and to the do-not-contact list,
keyed by the list (the actor's organization id, or the user id in personal mode). The actor names
the context and is checked like an API caller (owners and admins in an organization for the
do-not-contact list; a member deletes and restores only the contacts it created); an identifier
that cannot name anyone breaks the contract and is dead-lettered with the reason. Each contact
command is answered with contact.changed, or contact.command_rejected (docs/kafka.md)."""

from __future__ import annotations

from typing import Annotated, Self
from uuid import UUID

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from shared.domain import identifiers
from shared.domain.do_not_contact import Kind, Reason, normalise
from shared.domain.recipient_zones import valid_zone
from shared.messaging.contracts.base import EXAMPLE_CONTACT, Contract, MessageType, Payload
from shared.messaging.topics import Topic

Note = Annotated[str, Field(max_length=1000)]


class DoNotContactEntry(Payload):
    """One identifier: `value` is normalised on the way in (usernames lower-case without @,
    phones the digits of the international number)."""

    kind: Kind
    value: str = Field(min_length=1, max_length=64)

    @field_validator("value")
    @classmethod
    def _normalised(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        # Without a valid kind there is nothing to normalise by: the kind's error says why.
        return value if kind is None else normalise(kind, value)


class DoNotContactAdd(DoNotContactEntry):
    """Add to the list; an entry already there is kept as it was (applied once)."""

    reason: Reason = Reason.MANUAL
    note: Note | None = None


class DoNotContactRemove(DoNotContactEntry):
    """Remove from the list; an identifier not on it is nothing to do."""


ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
FieldValue = str | int | float | bool | None


class ContactUpsert(Payload):
    """Create or update one contact, found by `external_id`, else `telegram_username`, else
    `phone` (the first given; a username case-insensitively; the oldest live match). Found, the
    fields given change (tags are replaced when given); not found, it is created, and then needs
    a username, phone or user id. A deleted contact found by its external id is refused
    (`contact_deleted`): restore it first."""

    external_id: ExternalId | None = None
    telegram_username: str | None = None
    phone: str | None = None
    telegram_user_id: int | None = Field(default=None, gt=0, lt=2**63)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    custom_fields: dict[str, FieldValue] | None = Field(default=None, max_length=50)
    tags: list[Tag] | None = Field(default=None, max_length=100)
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="The contact's own time zone, an IANA name; one the zone database does not "
        "know breaks the contract. Null or absent keeps the zone it has.",
    )

    _username = field_validator("telegram_username")(identifiers.username)
    _phone = field_validator("phone")(identifiers.phone)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and valid_zone(value) is None:
            raise ValueError(f"unknown time zone {value!r}")
        return value

    @model_validator(mode="after")
    def _found_by_something(self) -> Self:
        if self.external_id is None and self.telegram_username is None and self.phone is None:
            raise ValueError("give external_id, telegram_username or phone to find the contact by")
        return self


class ContactRef(Payload):
    """One contact of the actor's context: by Dripline's id or by the external id."""

    contact_id: UUID | None = None
    external_id: ExternalId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.contact_id is None) == (self.external_id is None):
            raise ValueError("give exactly one of contact_id and external_id")
        return self


class ContactTags(ContactRef):
    """Add these tags (kept once each, in order) or remove them (absent ones are no change)."""

    tags: list[Tag] = Field(min_length=1, max_length=100)


ContactRecordCommand = ContactUpsert | ContactTags | ContactRef
ContactCommand = DoNotContactAdd | DoNotContactRemove | ContactRecordCommand

ADD = Contract(
    Topic.CONTACT_COMMANDS,
    MessageType.DO_NOT_CONTACT_ADD,
    1,
    DoNotContactAdd,
    True,
    {"kind": "username", "value": "alice_smith", "reason": "complaint", "note": "from the CRM"},
)
REMOVE = Contract(
    Topic.CONTACT_COMMANDS,
    MessageType.DO_NOT_CONTACT_REMOVE,
    1,
    DoNotContactRemove,
    True,
    {"kind": "phone", "value": "4915123456789"},
)
EXAMPLE_EXTERNAL = "crm-000417"
UPSERT = Contract(
    Topic.CONTACT_COMMANDS,
    MessageType.CONTACT_UPSERT,
    1,
    ContactUpsert,
    True,
    {
        "external_id": EXAMPLE_EXTERNAL,
        "telegram_username": "alice_smith",
        "phone": "+4915123456789",
        "telegram_user_id": None,
        "first_name": "Alice",
        "last_name": "Smith",
        "custom_fields": {"plan": "pro"},
        "tags": ["crm", "q4"],
        "time_zone": "Europe/Berlin",
    },
)
ADD_TAGS = Contract(
    Topic.CONTACT_COMMANDS,
    MessageType.CONTACT_ADD_TAGS,
    1,
    ContactTags,
    True,
    {"contact_id": None, "external_id": EXAMPLE_EXTERNAL, "tags": ["vip"]},
)
REMOVE_TAGS = Contract(
    Topic.CONTACT_COMMANDS,
    MessageType.CONTACT_REMOVE_TAGS,
    1,
    ContactTags,
    True,
    {"contact_id": EXAMPLE_CONTACT, "external_id": None, "tags": ["q4"]},
)
DELETE = Contract(
    Topic.CONTACT_COMMANDS,
    MessageType.CONTACT_DELETE,
    1,
    ContactRef,
    True,
    {"contact_id": None, "external_id": EXAMPLE_EXTERNAL},
)
RESTORE = Contract(
    Topic.CONTACT_COMMANDS,
    MessageType.CONTACT_RESTORE,
    1,
    ContactRef,
    True,
    {"contact_id": EXAMPLE_CONTACT, "external_id": None},
)
# The do-not-contact commands (services/api/do_not_contact.py) and the contacts' own
# (services/api/contact_commands.py), each handled by its module.
DO_NOT_CONTACT_CONTRACTS: tuple[Contract[DoNotContactAdd | DoNotContactRemove], ...] = (
    ADD,
    REMOVE,
)
RECORD_CONTRACTS: tuple[Contract[ContactRecordCommand], ...] = (
    UPSERT,
    ADD_TAGS,
    REMOVE_TAGS,
    DELETE,
    RESTORE,
)
CONTRACTS: tuple[Contract[ContactCommand], ...] = (*DO_NOT_CONTACT_CONTRACTS, *RECORD_CONTRACTS)
