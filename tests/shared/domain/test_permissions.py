"""View and launch permissions (spec 001, "Permissions" of Launch, and view modes)."""

from __future__ import annotations

from uuid import UUID

import pytest

from shared.domain.permissions import Action, Caller, CampaignOwnership, Decision, Role, decide

ME = UUID(int=1)
OTHER = UUID(int=2)
ORG = UUID(int=10)
OTHER_ORG = UUID(int=11)

A = Decision.ALLOWED
F = Decision.FORBIDDEN
I = Decision.INVISIBLE  # noqa: E741

CASES = [
    # caller (org, role, admin view), campaign (creator, org), action -> decision
    # Personal mode: visible only to the creator, isolated from every organization.
    ((None, None, False), (ME, None), Action.VIEW, A),
    ((None, None, False), (ME, None), Action.LAUNCH, A),
    ((None, None, False), (OTHER, None), Action.VIEW, I),
    ((ORG, Role.OWNER, True), (ME, None), Action.VIEW, I),
    ((None, None, False), (ME, ORG), Action.VIEW, I),
    # Own organization campaigns: every role may launch its own.
    ((ORG, Role.OWNER, False), (ME, ORG), Action.LAUNCH, A),
    ((ORG, Role.ADMIN, False), (ME, ORG), Action.LAUNCH, A),
    ((ORG, Role.MEMBER, False), (ME, ORG), Action.LAUNCH, A),
    # Another member's: visible to owner/admin only with admin view; never launchable.
    ((ORG, Role.OWNER, True), (OTHER, ORG), Action.VIEW, A),
    ((ORG, Role.ADMIN, True), (OTHER, ORG), Action.VIEW, A),
    ((ORG, Role.OWNER, True), (OTHER, ORG), Action.LAUNCH, F),  # "Cannot launch other members'"
    ((ORG, Role.ADMIN, True), (OTHER, ORG), Action.LAUNCH, F),
    ((ORG, Role.OWNER, False), (OTHER, ORG), Action.VIEW, I),
    ((ORG, Role.MEMBER, True), (OTHER, ORG), Action.VIEW, I),
    ((ORG, Role.MEMBER, True), (OTHER, ORG), Action.LAUNCH, I),
    # Another organization's campaigns are invisible.
    ((ORG, Role.OWNER, True), (ME, OTHER_ORG), Action.VIEW, I),
    # A caller without a role in the organization sees nothing of it.
    ((ORG, None, False), (ME, ORG), Action.VIEW, I),
]


@pytest.mark.parametrize(("caller", "campaign", "action", "expected"), CASES)
def test_decide(
    caller: tuple[UUID | None, Role | None, bool],
    campaign: tuple[UUID, UUID | None],
    action: Action,
    expected: Decision,
) -> None:
    organization, role, admin_view = caller
    who = Caller(ME, organization, role, admin_view_enabled=admin_view)
    assert decide(who, CampaignOwnership(*campaign), action) is expected
