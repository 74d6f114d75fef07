"""The calendar of launches: scheduled, recurring (every occurrence) and already launched."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from services.api.auth import CurrentPrincipal
from services.api.campaigns.models import Calendar, CalendarEntry
from services.api.deps import Database
from services.api.problems import field_error, invalid
from shared.db.sql import Queries
from shared.domain import permissions, schedules
from shared.domain.campaigns import LaunchType
from shared.domain.moments import Moment
from shared.domain.permissions import ViewMode

CALENDAR = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter()

MAX_CALENDAR_DAYS = 366
MAX_CALENDAR_ENTRIES = 5000


@router.get(
    "/calendar", response_model=Calendar, response_model_by_alias=True, summary="Launches by date"
)
async def calendar(
    who: CurrentPrincipal,
    database: Database,
    start: Annotated[Moment, Query(alias="from")],
    end: Annotated[Moment, Query(alias="to")],
    view_mode: ViewMode = ViewMode.OWN,
) -> Calendar:
    """Scheduled launches, every occurrence of recurring campaigns in their time zone, and the
    launches of now and manual campaigns, in [from, to). Drafts have no launch time."""
    if end <= start:
        raise invalid([field_error("to", "'to' must be after 'from'")])
    if end - start > timedelta(days=MAX_CALENDAR_DAYS):
        raise invalid([field_error("to", f"the range may span at most {MAX_CALENDAR_DAYS} days")])
    caller = who.caller
    own = permissions.effective_view_mode(caller, view_mode) is ViewMode.OWN
    async with database.acquire() as connection:
        rows = await connection.fetch(
            CALENDAR["calendar"],
            caller.organization_id,
            caller.user_id if own else None,
            start,
            end,
        )
    entries: list[CalendarEntry] = []
    for row in rows:
        launch_type = LaunchType(row["launch_type"])
        moments: list[tuple[datetime, Literal["scheduled", "recurring", "launched"]]]
        if launch_type is LaunchType.SCHEDULE:
            moments = [(row["scheduled_at"], "scheduled")]
        elif launch_type is LaunchType.RECURRING:
            found = schedules.occurrences_between(
                row["recurrence"], row["timezone"], start, end, MAX_CALENDAR_ENTRIES
            )
            moments = [(moment, "recurring") for moment in found]
        else:
            moments = [(row["launched_at"], "launched")]
        zone = ZoneInfo(row["timezone"])
        for at, kind in moments:
            entries.append(
                CalendarEntry(
                    date=at.astimezone(zone).date().isoformat(),
                    at=at,
                    kind=kind,
                    campaign_id=row["id"],
                    name=row["name"],
                    description=row["description"],
                    status=row["status"],
                    launch_type=launch_type,
                    timezone=row["timezone"],
                )
            )
    entries.sort(key=lambda e: (e.at, str(e.campaign_id)))
    truncated = len(entries) > MAX_CALENDAR_ENTRIES
    return Calendar(start=start, end=end, items=entries[:MAX_CALENDAR_ENTRIES], truncated=truncated)
