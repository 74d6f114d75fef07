"""dripline.contact.commands: other systems' changes to the do-not-contact list, keyed by the
list (the actor's organization id, or the user id in personal mode). The actor names the list
and is checked like an API caller (owners and admins in an organization); an identifier that
cannot name anyone breaks the contract and is dead-lettered with the reason."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from shared.domain.do_not_contact import Kind, Reason, normalise
from shared.messaging.contracts.base import Contract, MessageType, Payload
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


ContactCommand = DoNotContactAdd | DoNotContactRemove

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
CONTRACTS: tuple[Contract[ContactCommand], ...] = (ADD, REMOVE)
