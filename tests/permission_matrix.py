"""The permission matrix as the spec states it, cell by cell, each cell naming its spec line.

The domain test checks `decide` against it and the HTTP test checks the API against it, so the
two agree on one written-down expectation. "Spec 001 L53" means line 53 of
../shared/spec/001_af4f904864ad484d.txt; "000" is the bulk operations page; "arch" is
docs/architecture.md's decisions on the spec.
"""

from __future__ import annotations

import itertools

from shared.domain.permissions import Action, ContactAction, Decision, RecordAction, Role

A = Decision.ALLOWED
F = Decision.FORBIDDEN
I = Decision.INVISIBLE  # noqa: E741

# Every role may do everything to its own campaigns, in either mode.
OWN: dict[Action, str] = {
    Action.VIEW: "001 L53-54: all roles can view own campaigns, always",
    Action.EDIT: "001 L66-67, L165-167: all roles can edit own campaigns",
    Action.DELETE: "001 L79-80, L199-201: all roles can delete own campaigns",
    Action.RESTORE: "001 L197: a deleted campaign can be restored (follows delete)",
    Action.LAUNCH: "001 L108-110: owner, admin and member can launch own campaigns",
    Action.PAUSE: "001 L126-128: owner, admin and member can pause own campaigns",
    Action.STOP: "001 L141-143: owner, admin and member can stop own campaigns",
    Action.ENABLE: "000 L59-61: owner, admin and member can enable own campaigns",
    Action.DISABLE: "000 L81-83: owner, admin and member can disable own campaigns",
    Action.DUPLICATE: "001 L185-187: owner, admin and member can duplicate own campaigns",
    Action.ADD_CONTACTS: "001 L232: add contacts works for any status (own campaign)",
    Action.REMOVE_CONTACTS: "001 L258-260: all roles can remove contacts from own campaigns",
}

# Another member's campaign, seen by an owner or admin with admin_view_enabled on.
OTHERS_VISIBLE: dict[Action, tuple[Decision, str]] = {
    Action.VIEW: (A, "001 L56-57: owner/admin can view if admin_view_enabled = true"),
    Action.EDIT: (A, "001 L70-71, L168: owner/admin can edit other members' campaigns"),
    Action.DELETE: (A, "001 L85-86, L202: owner/admin can delete other members' campaigns"),
    Action.RESTORE: (A, "001 L197 with L202: restore follows delete"),
    Action.LAUNCH: (F, "001 L111: cannot launch other members' campaigns, even with view"),
    Action.PAUSE: (F, "001 L129: cannot pause other members' campaigns"),
    Action.STOP: (A, "000 L144 over 001 L144 (arch: stopping another member's campaign)"),
    Action.ENABLE: (A, "000 L62: owner/admin can enable other members' campaigns"),
    Action.DISABLE: (A, "000 L84: owner/admin can disable other members' campaigns"),
    Action.DUPLICATE: (A, "001 L188: owner/admin can duplicate others' campaigns if can view"),
    Action.ADD_CONTACTS: (A, "001 L261 (add follows remove: owner/admin on others')"),
    Action.REMOVE_CONTACTS: (A, "001 L261: owner/admin can remove contacts from others'"),
}


def expected(
    mode: str, role: Role | None, admin_view: bool, own: bool, action: Action
) -> tuple[Decision, str]:
    if own:
        return A, OWN[action]
    if mode == "personal":
        return I, "001 L18-22, L61-64: personal mode shows only your own campaigns"
    if role is Role.MEMBER:
        return I, "001 L58-59: members cannot view others' campaigns, even with admin view"
    if not admin_view:
        return I, "001 L56-57: owner/admin view others only if admin_view_enabled = true"
    return OTHERS_VISIBLE[action]


def cells() -> list[tuple[str, Role | None, bool, bool, Action]]:
    organization = itertools.product(
        ["organization"], list(Role), [True, False], [True, False], list(Action)
    )
    personal = itertools.product(["personal"], [None], [True, False], [True, False], list(Action))
    return [*organization, *personal]


# Companies and pipelines (and the opportunities in them) follow the contacts' rule, not the
# campaigns' (issue 19, item 6): an organization's are every member's, whatever admin view says;
# personal ones are their owner's alone; deleting another member's is for owners and admins.
RECORD_ACTIONS = list(RecordAction)


def expected_record(
    mode: str, role: Role | None, admin_view: bool, own: bool, action: RecordAction
) -> tuple[Decision, str]:
    if own:
        return A, "issue 19: one's own companies and pipelines, in either mode"
    if mode == "personal":
        return I, "contacts: personal mode shows only one's own"
    if action is RecordAction.DELETE and role is Role.MEMBER:
        return F, "issue 19 item 6: deleting across owners is for owners and admins"
    return A, "contacts: an organization's are shared by every member (admin view or not)"


def record_cells() -> list[tuple[str, Role | None, bool, bool, RecordAction]]:
    organization = itertools.product(
        ["organization"], list(Role), [True, False], [True, False], RECORD_ACTIONS
    )
    personal = itertools.product(["personal"], [None], [True, False], [True, False], RECORD_ACTIONS)
    return [*organization, *personal]


# Contacts' destructive actions (issue 15, item 5), by mode, role and whether every contact the
# action touches is the caller's own. Source "issue 15": the item 5.
CONTACT_CELLS: dict[tuple[str, Role | None, bool, ContactAction], tuple[Decision, str]] = {}
for _action in ContactAction:
    for _own in (True, False):
        CONTACT_CELLS[("personal", None, _own, _action)] = (
            A,
            "issue 15: in personal mode every contact and the list are one's own",
        )
        for _role in (Role.OWNER, Role.ADMIN):
            CONTACT_CELLS[("organization", _role, _own, _action)] = (
                A,
                "issue 15: owners and admins edit the list, delete and export any contact",
            )
    CONTACT_CELLS[("organization", Role.MEMBER, True, _action)] = (
        (F, "issue 15: members may not edit the do-not-contact list")
        if _action is ContactAction.EDIT_DO_NOT_CONTACT
        else (A, "issue 15: a member may delete and export the contacts they created")
    )
    CONTACT_CELLS[("organization", Role.MEMBER, False, _action)] = (
        F,
        "issue 15: members may not edit the list, nor delete or export others' contacts",
    )

# Merging takes the other contact away (issue 19, item 6): a member merges only contacts they
# created; "own" here means both contacts of the pair are the caller's.
CONTACT_CELLS[("organization", Role.MEMBER, True, ContactAction.MERGE_CONTACTS)] = (
    A,
    "issue 19 item 6: a member merges the contacts they created",
)
CONTACT_CELLS[("organization", Role.MEMBER, False, ContactAction.MERGE_CONTACTS)] = (
    F,
    "issue 19 item 6: merging across owners is for owners and admins",
)


# The unified inbox (issue 15, item 6; docs/inbox.md): a conversation follows its campaign.
# Whoever may view the campaign lists and reads its conversations; whoever may edit it answers
# them, marks them read and releases them.
INBOX_CALLS: dict[str, tuple[Action, str]] = {
    "list": (
        Action.VIEW,
        "issue 15 item 6: the inbox lists the conversations of visible campaigns",
    ),
    "view": (Action.VIEW, "issue 15 item 6: a conversation is seen as its campaign is"),
    "messages": (Action.VIEW, "issue 15 item 6: its history is seen as its campaign is"),
    "read": (Action.EDIT, "issue 15 item 6: marking read follows editing the campaign"),
    "answer": (Action.EDIT, "issue 15 item 6: answering as the account follows editing it"),
    "release": (Action.EDIT, "issue 15 item 6: releasing follows editing the campaign"),
}


def expected_inbox(
    mode: str, role: Role | None, admin_view: bool, own: bool, call: str
) -> tuple[Decision, str]:
    action, source = INBOX_CALLS[call]
    decision, why = expected(mode, role, admin_view, own, action)
    return decision, f"{source}; {why}"


def inbox_cells() -> list[tuple[str, Role | None, bool, bool, str]]:
    organization = itertools.product(
        ["organization"], list(Role), [True, False], [True, False], list(INBOX_CALLS)
    )
    personal = itertools.product(
        ["personal"], [None], [True, False], [True, False], list(INBOX_CALLS)
    )
    return [*organization, *personal]
