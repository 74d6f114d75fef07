"""Who may do what to a campaign: the whole permission matrix, used by HTTP and Kafka alike.

Two questions, asked in order:

1. May the caller see the campaign at all? If not, the answer is INVISIBLE (HTTP 404), whatever
   the action: a caller must not learn that a campaign it may not see exists.
2. May it perform the action? Every role may do everything to its own campaigns (spec 001, each
   action's "Permissions"). On another member's campaign, only owners and admins ever get this
   far (they alone may view others' campaigns), and then the action decides (`OTHERS_ALLOWED`).
   A refusal there is FORBIDDEN (HTTP 403).

Status rules (what may be done in which state) are not permissions; they live in
`shared.domain.campaigns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Action(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    DELETE = "delete"
    RESTORE = "restore"
    LAUNCH = "launch"
    PAUSE = "pause"
    STOP = "stop"
    ENABLE = "enable"
    DISABLE = "disable"
    DUPLICATE = "duplicate"
    ADD_CONTACTS = "add_contacts"
    REMOVE_CONTACTS = "remove_contacts"


class Decision(StrEnum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # may view, may not change: HTTP 403
    INVISIBLE = "invisible"  # may not even view: HTTP 404


class ViewMode(StrEnum):
    OWN = "own"
    ALL = "all"


@dataclass(frozen=True)
class Caller:
    user_id: UUID
    organization_id: UUID | None  # None: personal mode
    role: Role | None  # the caller's role in organization_id; None in personal mode
    admin_view_enabled: bool = False

    @property
    def sees_others(self) -> bool:
        """Spec 001, view permissions: owners and admins see other members' campaigns when the
        organization enables admin view; members never do."""
        return (
            self.organization_id is not None
            and self.role in (Role.OWNER, Role.ADMIN)
            and self.admin_view_enabled
        )


@dataclass(frozen=True)
class Ownership:
    """Who made something, in which context. A campaign, and also what a member makes over their
    campaigns and contacts (bulk actions, exports, bulk operations): those name the campaigns
    and contacts, so whoever may not see the campaigns may not see them either (`can_view`)."""

    created_by: UUID
    organization_id: UUID | None


CampaignOwnership = Ownership


# What an owner or admin may do to another member's campaign it can view. Launch and pause stay
# with the creator (spec 001: "Cannot launch other members' campaigns (even with view access)",
# "Cannot pause other members' campaigns"). Stop follows docs/architecture.md (spec 000 lets
# owners and admins stop others' campaigns; spec 001 does not) and restore follows delete.
# Adding contacts follows removing them (spec 001 names only the latter).
OTHERS_ALLOWED: frozenset[Action] = frozenset(
    {
        Action.VIEW,
        Action.EDIT,
        Action.DELETE,
        Action.RESTORE,
        Action.STOP,
        Action.ENABLE,
        Action.DISABLE,
        Action.DUPLICATE,
        Action.ADD_CONTACTS,
        Action.REMOVE_CONTACTS,
    }
)


def can_view(caller: Caller, owned: Ownership) -> bool:
    """The one visibility rule, for campaigns and for a member's bulk actions, exports and bulk
    operations alike: one's own in the same context, and another member's only for an owner or
    admin while admin view is on (`Caller.sees_others`, which lists filter on)."""
    if owned.organization_id != caller.organization_id:
        return False  # personal and organization data never mix, nor do two organizations
    if owned.created_by == caller.user_id:
        return owned.organization_id is None or caller.role is not None
    return caller.sees_others


def decide(caller: Caller, campaign: CampaignOwnership, action: Action) -> Decision:
    if not can_view(caller, campaign):
        return Decision.INVISIBLE
    if campaign.created_by == caller.user_id or action in OTHERS_ALLOWED:
        return Decision.ALLOWED
    return Decision.FORBIDDEN


def effective_view_mode(caller: Caller, requested: ViewMode) -> ViewMode:
    """Spec 001: "all" needs an owner or admin and admin_view_enabled; anyone else gets "own"."""
    if requested is ViewMode.ALL and caller.sees_others:
        return ViewMode.ALL
    return ViewMode.OWN


def can_manage_organization(role: Role | None) -> bool:
    """Organization settings and membership: owners and admins."""
    return role in (Role.OWNER, Role.ADMIN)


class RecordAction(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    DELETE = "delete"


def decide_record(caller: Caller, owned: Ownership, action: RecordAction) -> Decision:
    """Companies and pipelines (and the opportunities in them) follow the contacts' rule, not
    the campaigns': an organization's are every member's to see and change, whatever admin
    view says, and personal ones are their owner's alone. Deleting another member's is for
    owners and admins (issue 19: "deleting across owners is for owners and admins")."""
    if owned.organization_id != caller.organization_id:
        return Decision.INVISIBLE
    if owned.organization_id is None:
        return Decision.ALLOWED if owned.created_by == caller.user_id else Decision.INVISIBLE
    if caller.role is None:
        return Decision.INVISIBLE
    if (
        action is RecordAction.DELETE
        and owned.created_by != caller.user_id
        and caller.role is Role.MEMBER
    ):
        return Decision.FORBIDDEN
    return Decision.ALLOWED


class ContactAction(StrEnum):
    """Actions that destroy or take away an organization's people data (issue 15, item 5)."""

    EDIT_DO_NOT_CONTACT = "edit_do_not_contact"
    DELETE_CONTACTS = "delete_contacts"
    EXPORT_CONTACTS = "export_contacts"
    MERGE_CONTACTS = "merge_contacts"  # takes one contact away into another (issue 19, item 6)


# The problem code a member's refusal carries, per action: says what only owners and admins do.
CONTACT_REFUSALS: dict[ContactAction, str] = {
    ContactAction.EDIT_DO_NOT_CONTACT: "do_not_contact_forbidden",
    ContactAction.DELETE_CONTACTS: "contacts_not_own",
    ContactAction.EXPORT_CONTACTS: "contacts_not_own",
    ContactAction.MERGE_CONTACTS: "merge_not_own",
}


def decide_contacts(caller: Caller, action: ContactAction, *, only_own: bool) -> Decision:
    """May the caller do this to contacts? `only_own`: every contact it touches was created by
    the caller (a selection limited to their own contacts).

    In personal mode everything is one's own. In an organization, owners and admins may do all
    of these to any contact; a member may not edit the do-not-contact list at all (it stops
    every member's campaigns), and may delete, export or merge only the contacts they created
    (merging across owners is for owners and admins). Visibility is
    not decided here: contacts are shared within an organization."""
    if caller.organization_id is None or caller.role in (Role.OWNER, Role.ADMIN):
        return Decision.ALLOWED
    if caller.role is None:
        return Decision.INVISIBLE  # not a member of that organization
    if action is ContactAction.EDIT_DO_NOT_CONTACT:
        return Decision.FORBIDDEN
    return Decision.ALLOWED if only_own else Decision.FORBIDDEN
