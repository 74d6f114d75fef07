"""May this contact be messaged from this account now? The rule the sender applies in the step's
own transaction right before it reserves a send (issue 15). Pure; the sender supplies the facts.

A deleted contact ends the execution for good: nobody is to message a person removed from the
address book, nor a person on the do-not-contact list (shared.domain.do_not_contact). A deleted
account only stops its own sends: the execution waits, so that giving the campaign another
account (or a person undoing the deletion) resumes it where it stood.

With the organization's `recontact_after_days` set, a person messaged by another execution (any
campaign of the organization) within that many days is not messaged again: the execution's
first send is refused and the execution ends (`recently_contacted`). Its follow-ups are not: a
conversation already begun goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class SkipReason(StrEnum):
    CONTACT_DELETED = "contact_deleted"
    DO_NOT_CONTACT = "do_not_contact"
    RECENTLY_CONTACTED = "recently_contacted"
    ACCOUNT_DELETED = "account_deleted"


@dataclass(frozen=True)
class Skip:
    """A send not made: why, and whether the execution ends (cancelled) or waits."""

    reason: SkipReason
    ends: bool


def recently_contacted(
    *,
    recontact_after_days: int | None,
    last_messaged_elsewhere: datetime | None,
    messaged_here: bool,
    now: datetime,
) -> bool:
    """Is this send the first of its execution to a person another execution messaged within
    `recontact_after_days` (None: the setting is off)? `last_messaged_elsewhere`: when another
    execution last sent them a message; `messaged_here`: this execution has sent them one."""
    if recontact_after_days is None or last_messaged_elsewhere is None or messaged_here:
        return False
    return now - last_messaged_elsewhere < timedelta(days=recontact_after_days)


def refusal(
    *,
    contact_deleted: bool,
    do_not_contact: bool,
    account_deleted: bool,
    recently_contacted: bool = False,
) -> Skip | None:
    """Why this send may not be made, or None if it may. The contact's reasons come first: they
    end the execution, whichever account it would have used. An opt-out is a do-not-contact
    entry (reason request), so it is refused here as one."""
    if contact_deleted:
        return Skip(SkipReason.CONTACT_DELETED, ends=True)
    if do_not_contact:
        return Skip(SkipReason.DO_NOT_CONTACT, ends=True)
    if recently_contacted:
        return Skip(SkipReason.RECENTLY_CONTACTED, ends=True)
    if account_deleted:
        return Skip(SkipReason.ACCOUNT_DELETED, ends=False)
    return None
