"""Contact selections as SQL (bulk actions resolve "select all" with it): every contact the
caller sees in its context that matches the filter. Fixed fragments; every value is bound."""

from __future__ import annotations

from shared.db.campaign_filter import Where, like_pattern
from shared.domain.bulk_actions import ContactFilter
from shared.domain.permissions import Caller


def add_contact_filter(
    where: Where, caller: Caller, selection: ContactFilter, *, only_own: bool = False
) -> None:
    """`only_own`: only the contacts the caller created (a member's bulk delete or export,
    permissions.decide_contacts)."""
    where.add("c.deleted_at IS NULL")
    where.add(f"c.organization_id IS NOT DISTINCT FROM {where.bind(caller.organization_id)}::uuid")
    if caller.organization_id is None or only_own:
        where.add(f"c.owner_user_id = {where.bind(caller.user_id)}")
    if selection.tags:
        where.add(f"c.tags @> {where.bind(selection.tags)}::text[]")
    if selection.search:
        term = like_pattern(selection.search.strip())
        where.add(
            "concat_ws(' ', c.first_name, c.last_name, c.telegram_username, c.phone)"
            f" ILIKE '%' || {where.bind(term)} || '%'"
        )
    if selection.custom_fields:
        where.add(f"c.custom_fields @> {where.bind(selection.custom_fields)}::jsonb")
    if selection.company_id is not None:
        where.add(f"c.company_id = {where.bind(selection.company_id)}::uuid")
