"""The whole permission matrix, cell by cell, each cell naming the spec line it comes from.

Axes: action (12) x whose campaign (own, another member's) x role (owner, admin, member) x
admin_view_enabled (on, off) in organization mode, and the same without roles in personal mode.
"Spec 001 L53" means line 53 of ../shared/spec/001_af4f904864ad484d.txt; "000" is the bulk
operations page; "arch" is docs/architecture.md's decisions on the spec.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from shared.domain.permissions import (
    CONTACT_REFUSALS,
    Action,
    Caller,
    CampaignOwnership,
    ContactAction,
    Ownership,
    RecordAction,
    Role,
    ViewMode,
    decide,
    decide_contacts,
    decide_record,
    effective_view_mode,
)
from tests.permission_matrix import (
    CONTACT_CELLS,
    INBOX_CALLS,
    OTHERS_VISIBLE,
    OWN,
    I,
    cells,
    expected,
    expected_inbox,
    expected_record,
    inbox_cells,
    record_cells,
)

ME = UUID(int=1)
OTHER = UUID(int=2)
ORG = UUID(int=10)
OTHER_ORG = UUID(int=11)

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


RECORD_CELLS = record_cells()


def test_the_record_matrix_is_complete() -> None:
    # 3 actions x 2 owners x (3 roles x 2 settings in organizations + 2 settings in personal).
    assert len(RECORD_CELLS) == 3 * 2 * (3 * 2 + 2) == 48


@pytest.mark.parametrize(
    ("mode", "role", "admin_view", "own", "action"),
    RECORD_CELLS,
    ids=[
        f"{m}-{r}-view{'On' if v else 'Off'}-{'own' if o else 'others'}-{a}"
        for m, r, v, o, a in RECORD_CELLS
    ],
)
def test_record_cell(
    mode: str, role: Role | None, admin_view: bool, own: bool, action: RecordAction
) -> None:
    organization = ORG if mode == "organization" else None
    caller = Caller(ME, organization, role, admin_view_enabled=admin_view)
    record = Ownership(ME if own else OTHER, organization)
    decision, source = expected_record(mode, role, admin_view, own, action)
    assert decide_record(caller, record, action) is decision, source


@pytest.mark.parametrize("action", list(RecordAction))
@pytest.mark.parametrize(
    ("caller_org", "role", "record_org"),
    [(None, None, ORG), (ORG, Role.OWNER, None), (ORG, Role.OWNER, OTHER_ORG)],
)
def test_records_of_another_context_are_invisible(
    action: RecordAction, caller_org: UUID | None, role: Role | None, record_org: UUID | None
) -> None:
    caller = Caller(ME, caller_org, role, admin_view_enabled=True)
    assert decide_record(caller, Ownership(ME, record_org), action) is I
    assert decide_record(caller, Ownership(OTHER, record_org), action) is I


def test_the_contact_cells_are_complete() -> None:
    # 4 actions x own or not x (3 roles + personal mode).
    assert len(CONTACT_CELLS) == 4 * 2 * 4


@pytest.mark.parametrize(
    ("mode", "role", "own", "action"),
    list(CONTACT_CELLS),
    ids=[f"{m}-{r}-{'own' if o else 'others'}-{a}" for m, r, o, a in CONTACT_CELLS],
)
def test_contact_cell(mode: str, role: Role | None, own: bool, action: ContactAction) -> None:
    caller = Caller(ME, ORG if mode == "organization" else None, role)
    decision, source = CONTACT_CELLS[(mode, role, own, action)]
    assert decide_contacts(caller, action, only_own=own) is decision, source


def test_a_non_member_is_refused_every_contact_action() -> None:
    for action in ContactAction:
        decision = decide_contacts(Caller(ME, ORG, None), action, only_own=True)
        assert decision is I


def test_every_contact_refusal_has_a_code() -> None:
    assert set(CONTACT_REFUSALS) == set(ContactAction)


INBOX_CELLS = inbox_cells()


@pytest.mark.parametrize(
    ("mode", "role", "admin_view", "own", "call"),
    INBOX_CELLS,
    ids=[
        f"{m}-{r}-view{'On' if v else 'Off'}-{'own' if o else 'others'}-{c}"
        for m, r, v, o, c in INBOX_CELLS
    ],
)
def test_inbox_cell(mode: str, role: Role | None, admin_view: bool, own: bool, call: str) -> None:
    """The inbox asks `decide` about the conversation's campaign (services/api/conversations.py
    `authorized`), with the call's action (INBOX_CALLS)."""
    organization = ORG if mode == "organization" else None
    caller = Caller(ME, organization, role, admin_view_enabled=admin_view)
    campaign = CampaignOwnership(ME if own else OTHER, organization)
    decision, source = expected_inbox(mode, role, admin_view, own, call)
    action, _ = INBOX_CALLS[call]
    assert decide(caller, campaign, action) is decision, source
