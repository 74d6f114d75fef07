"""/campaign-flows, one module per sub-resource: definitions (written here), lifecycle commands
and a campaign's contacts (applied by the scheduler), the calendar of launches, and test sends
(sent by the sender)."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.campaigns import calendar, contacts, definitions, lifecycle, previews

router = APIRouter(tags=["campaigns"])
# The calendar before the definitions: /calendar is not a campaign id.
# The prefix goes on each part, not on this router: FastAPI refuses to include a route whose
# path and prefix are both empty (POST and GET /campaign-flows).
for part in (calendar, definitions, lifecycle, contacts, previews):
    router.include_router(part.router, prefix="/campaign-flows")
