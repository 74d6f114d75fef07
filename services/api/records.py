"""The caller's right to an organization's shared records (companies, pipelines and the
opportunities in them), by the contacts' rule: `permissions.decide_record`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.api.auth import Principal
from services.api.problems import forbidden, not_found
from shared.domain.permissions import Decision, Ownership, RecordAction, decide_record


def authorize_record(
    who: Principal, row: Mapping[str, Any] | None, what: str, action: RecordAction
) -> Mapping[str, Any]:
    """The row if the caller may do `action` to it: 404 if it may not see it (another
    organization's, another user's personal one, or none), 403 if it sees it but may not."""
    if row is None:
        raise not_found(what)
    owned = Ownership(row["owner_user_id"], row["organization_id"])
    decision = decide_record(who.caller, owned, action)
    if decision is Decision.INVISIBLE:
        raise not_found(what)
    if decision is Decision.FORBIDDEN:
        raise forbidden(
            f"only its creator, an owner or an admin may {action.value} another member's {what}"
        )
    return row
