"""The campaign list's filters as SQL, shared by the list (API) and by bulk selections
(scheduler), so "select all" selects exactly what the list shows.

Clauses are fixed fragments; every value is bound.
"""

from __future__ import annotations

from typing import Any

from shared.domain import permissions
from shared.domain.bulk_operations import CampaignFilter
from shared.domain.permissions import Caller, ViewMode


class Where:
    """Bound parameters for fixed fragments of a query over campaigns c."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.values: list[Any] = []

    def bind(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "true"


def like_pattern(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def add_filter(
    where: Where, caller: Caller, selection: CampaignFilter, *, include_deleted: bool = False
) -> None:
    """Campaigns the caller sees in the view mode asked for, matching the filters."""
    where.add(f"c.organization_id IS NOT DISTINCT FROM {where.bind(caller.organization_id)}::uuid")
    where.add("c.bulk_action_id IS NULL")  # a send_message action's own campaign is not listed
    if permissions.effective_view_mode(caller, selection.view_mode) is ViewMode.OWN:
        where.add(f"c.created_by = {where.bind(caller.user_id)}")
    elif selection.created_by is not None:
        where.add(f"c.created_by = {where.bind(selection.created_by)}")
    if not include_deleted:
        where.add("c.deleted_at IS NULL")
    if selection.status:
        where.add(f"c.status = ANY({where.bind([s.value for s in selection.status])}::text[])")
    if selection.enabled is not None:
        where.add(f"c.enabled = {where.bind(selection.enabled)}")
    if selection.launch_type:
        types = [t.value for t in selection.launch_type]
        where.add(f"c.launch_type = ANY({where.bind(types)}::text[])")
    if selection.tag:
        where.add(f"c.tags @> ARRAY[{where.bind(selection.tag)}::text]")
    if selection.channel is not None and selection.channel != "telegram":
        where.add("false")  # every campaign is a Telegram campaign for now
    if selection.search:
        term = selection.search.strip()
        where.add(
            f"(c.name ILIKE '%' || {where.bind(like_pattern(term))} || '%'"
            f" OR c.id::text = lower({where.bind(term)}))"
        )
