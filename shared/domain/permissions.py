"""Who may do what to a campaign. One pure module, used by HTTP and Kafka commands alike.

Foundation scope: viewing and launching. Spec 001: every role may launch its own campaigns and
nobody may launch another member's ("even with view access"). Personal-mode campaigns
(organization_id null) are visible only to their creator. The full matrix (edit, delete, stop,
view_mode all, admin_view_enabled) comes with the campaign-management work.
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
    LAUNCH = "launch"


class Decision(StrEnum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # may view, may not change: HTTP 403
    INVISIBLE = "invisible"  # may not even view: HTTP 404


@dataclass(frozen=True)
class Caller:
    user_id: UUID
    organization_id: UUID | None  # None: personal mode
    role: Role | None  # the caller's role in organization_id; None in personal mode
    admin_view_enabled: bool = False


@dataclass(frozen=True)
class CampaignOwnership:
    created_by: UUID
    organization_id: UUID | None


def can_view(caller: Caller, campaign: CampaignOwnership) -> bool:
    if campaign.organization_id != caller.organization_id:
        return False  # personal and organization campaigns never mix
    if campaign.organization_id is None:
        return campaign.created_by == caller.user_id
    if caller.role is None:
        return False
    if campaign.created_by == caller.user_id:
        return True
    return caller.role in (Role.OWNER, Role.ADMIN) and caller.admin_view_enabled


def decide(caller: Caller, campaign: CampaignOwnership, action: Action) -> Decision:
    if not can_view(caller, campaign):
        return Decision.INVISIBLE
    if action is Action.VIEW:
        return Decision.ALLOWED
    if action is Action.LAUNCH:
        own = campaign.created_by == caller.user_id
        return Decision.ALLOWED if own else Decision.FORBIDDEN
    raise ValueError(f"no rule for {action}")  # pragma: no cover - exhaustive above
