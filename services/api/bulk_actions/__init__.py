"""/bulk-actions and /exports: bulk actions over contacts (specs 002 and 003), by part: the
request and response shapes (models), what a request's params and plan mean (parameters), the
endpoints (routes) and the export download (exports)."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.bulk_actions import exports, routes

router = APIRouter(tags=["bulk actions"])
for part in (routes, exports):
    router.include_router(part.router)
