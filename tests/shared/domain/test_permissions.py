"""The whole permission matrix, cell by cell, each cell naming the spec line it comes from.

Axes: action (12) x whose campaign (own, another member's) x role (owner, admin, member) x
admin_view_enabled (on, off) in organization mode, and the same without roles in personal mode.
"Spec 001 L53" means line 53 of ../shared/spec/001_af4f904864ad484d.txt; "000" is the bulk
operations page; "arch" is docs/architecture.md's decisions on the spec.
"""

from __future__ import annotations

import itertools
from uuid import UUID

import pytest

from shared.domain.permissions import (
    Action,
    Caller,
    CampaignOwnership,
    Decision,
    Role,
    ViewMode,
    decide,
    effective_view_mode,
)

ME = UUID(int=1)
OTHER = UUID(int=2)
ORG = UUID(int=10)
OTHER_ORG = UUID(int=11)

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


CELLS = cells()


def test_the_matrix_is_complete() -> None:
    # 12 actions x 2 owners x (3 roles x 2 settings in organizations + 2 settings in personal).
    assert len(CELLS) == 12 * 2 * (3 * 2 + 2) == 192
    assert set(OWN) == set(OTHERS_VISIBLE) == set(Action)


@pytest.mark.parametrize(
    ("mode", "role", "admin_view", "own", "action"),
    CELLS,
    ids=[
        f"{m}-{r}-view{'On' if v else 'Off'}-{'own' if o else 'others'}-{a}"
        for m, r, v, o, a in CELLS
    ],
)
def test_cell(mode: str, role: Role | None, admin_view: bool, own: bool, action: Action) -> None:
    organization = ORG if mode == "organization" else None
    caller = Caller(ME, organization, role, admin_view_enabled=admin_view)
    campaign = CampaignOwnership(ME if own else OTHER, organization)
    decision, source = expected(mode, role, admin_view, own, action)
    assert decide(caller, campaign, action) is decision, source


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize(
    ("caller_org", "role", "campaign_org", "source"),
    [
        (None, None, ORG, "001 L62-64: personal mode sees only organization_id = NULL"),
        (ORG, Role.OWNER, None, "001 L21: personal campaigns are isolated from organizations"),
        (ORG, Role.OWNER, OTHER_ORG, "001 L60: the campaign must belong to the same org"),
    ],
)
def test_contexts_never_mix(
    action: Action,
    caller_org: UUID | None,
    role: Role | None,
    campaign_org: UUID | None,
    source: str,
) -> None:
    caller = Caller(ME, caller_org, role, admin_view_enabled=True)
    # Even the caller's own campaign is invisible from another context.
    assert decide(caller, CampaignOwnership(ME, campaign_org), action) is I, source
    assert decide(caller, CampaignOwnership(OTHER, campaign_org), action) is I, source


@pytest.mark.parametrize(
    ("role", "admin_view", "requested", "effective", "source"),
    [
        (Role.OWNER, True, ViewMode.ALL, ViewMode.ALL, "001 L12-16"),
        (Role.ADMIN, True, ViewMode.ALL, ViewMode.ALL, "001 L12-16"),
        (Role.MEMBER, True, ViewMode.ALL, ViewMode.OWN, "001 L17: members fall back to own"),
        (Role.OWNER, False, ViewMode.ALL, ViewMode.OWN, "001 L15-16: needs admin_view_enabled"),
        (Role.ADMIN, False, ViewMode.ALL, ViewMode.OWN, "001 L15-16: needs admin_view_enabled"),
        (None, True, ViewMode.ALL, ViewMode.OWN, "001 L18-22: personal mode is own only"),
        (Role.OWNER, True, ViewMode.OWN, ViewMode.OWN, "001 L9: own is the default"),
    ],
)
def test_view_mode(
    role: Role | None, admin_view: bool, requested: ViewMode, effective: ViewMode, source: str
) -> None:
    organization = None if role is None else ORG
    caller = Caller(ME, organization, role, admin_view_enabled=admin_view)
    assert effective_view_mode(caller, requested) is effective, source
