"""May this contact be messaged from this account now? The rule the sender applies in the step's
own transaction right before it reserves a send (issue 15). Pure; the sender supplies the facts.

A deleted contact ends the execution for good: nobody is to message a person removed from the
address book, nor a person on the do-not-contact list (shared.domain.do_not_contact). A deleted
account only stops its own sends: the execution waits, so that giving the campaign another
account (or a person undoing the deletion) resumes it where it stood.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SkipReason(StrEnum):
    CONTACT_DELETED = "contact_deleted"
    DO_NOT_CONTACT = "do_not_contact"
    ACCOUNT_DELETED = "account_deleted"


@dataclass(frozen=True)
class Skip:
    """A send not made: why, and whether the execution ends (cancelled) or waits."""

    reason: SkipReason
    ends: bool


def refusal(*, contact_deleted: bool, do_not_contact: bool, account_deleted: bool) -> Skip | None:
    """Why this send may not be made, or None if it may. The contact's reasons come first: they
    end the execution, whichever account it would have used. An opt-out is a do-not-contact
    entry (reason request), so it is refused here as one."""
    if contact_deleted:
        return Skip(SkipReason.CONTACT_DELETED, ends=True)
    if do_not_contact:
        return Skip(SkipReason.DO_NOT_CONTACT, ends=True)
    if account_deleted:
        return Skip(SkipReason.ACCOUNT_DELETED, ends=False)
    return None
