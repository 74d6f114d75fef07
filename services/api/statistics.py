"""Campaign statistics (spec 001, "Campaign Statistics") as the stats service materialized them,
and comparative statistics for several campaigns (spec 004, "Statistics")."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.api.auth import ConnectedPrincipal, CurrentPrincipal, RequestConnection, pool
from services.api.campaign_access import authorized
from shared.db.sql import Queries
from shared.domain import permissions
from shared.domain.permissions import Action

STATISTICS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(tags=["statistics"])

COUNTS = (
    "total_contacts", "contacts_started", "contacts_completed", "contacts_failed",
    "contacts_active", "contacts_responded", "messages_sent", "messages_failed",
    "messages_delivered", "messages_not_sent", "contacts_opted_out",
)  # fmt: skip
RATES = ("completion_rate", "response_rate", "delivery_rate")
MAX_COMPARED = 100


class VariantFigures(BaseModel):
    contacts: int
    contacts_completed: int
    contacts_responded: int
    messages_sent: int
    messages_delivered: int
    messages_failed: int
    completion_rate: float
    response_rate: float
    delivery_rate: float


class Figures(BaseModel):
    total_contacts: int = Field(description="Leads in the campaign (removed contacts excluded)")
    contacts_started: int = Field(description="Executions that began processing")
    contacts_completed: int = Field(description="Executions that finished successfully")
    contacts_failed: int = Field(description="Executions that failed")
    contacts_active: int = Field(description="Started executions not yet finished or paused")
    contacts_responded: int = Field(description="Leads who replied")
    messages_sent: int = Field(description="Outgoing messages Telegram accepted")
    messages_failed: int = Field(description="Failed send attempts")
    messages_delivered: int = Field(description="Sent messages confirmed by a read or a reply")
    messages_not_sent: int = Field(description="Sends recorded but not yet accepted")
    completion_rate: float = Field(description="completed / total * 100; 0 when total is 0")
    response_rate: float = Field(description="responded / delivered * 100; 0 when none delivered")
    delivery_rate: float = Field(description="delivered / sent * 100; 0 when none sent")
    contacts_opted_out: int = Field(description="Leads whose reply opted them out")
    opt_out_rate: float = Field(
        description="opted out / delivered * 100 (as response_rate); 0 when none delivered"
    )
    variants: dict[str, VariantFigures] = Field(description="Per A/B variant")
    executions_by_status: dict[str, int] = Field(description="Executions per status")


class CampaignStatistics(Figures):
    campaign_id: UUID
    as_of: datetime = Field(description="When the figures were counted")
    lag_seconds: float | None = Field(
        description="How long the stats service's latest events took to be reflected; "
        "null before it has applied any"
    )
    materialized: bool = Field(
        description="False when the figures were counted for this request (refresh=true, or "
        "a campaign no event has touched yet)"
    )


def _figures(row: asyncpg.Record) -> dict[str, Any]:
    """Counts as stored or recounted, with the spec's rates (here and per variant)."""
    figures: dict[str, Any] = {name: row[name] for name in COUNTS}
    figures.update(_rates(figures, total="total_contacts"))
    figures["opt_out_rate"] = _opt_out_rate(figures)
    figures["variants"] = {
        name: {**counts, **_rates(counts, total="contacts")}
        for name, counts in row["variants"].items()
    }
    figures["executions_by_status"] = row["by_status"]
    return figures


def _opt_out_rate(counts: dict[str, Any]) -> float:
    """Campaign-wide only: variants do not count opt-outs."""
    return rate(counts["contacts_opted_out"], counts["messages_delivered"])


def _rates(counts: dict[str, Any], *, total: str) -> dict[str, float]:
    return {
        "completion_rate": rate(counts["contacts_completed"], counts[total]),
        "response_rate": rate(counts["contacts_responded"], counts["messages_delivered"]),
        "delivery_rate": rate(counts["messages_delivered"], counts["messages_sent"]),
    }


@router.get(
    "/campaign-flows/{campaign_id}/statistics",
    response_model=CampaignStatistics,
    summary="A campaign's statistics, as materialized from events",
)
async def campaign_statistics(
    campaign_id: UUID,
    who: ConnectedPrincipal,
    connection: RequestConnection,
    refresh: Annotated[
        bool, Query(description="Count now from the source tables (the refresh button)")
    ] = False,
) -> CampaignStatistics:
    await authorized(connection, who, campaign_id, Action.VIEW)
    row = None if refresh else await connection.fetchrow(STATISTICS["materialized"], campaign_id)
    if row is not None:
        return CampaignStatistics(
            campaign_id=campaign_id, as_of=row["as_of"], lag_seconds=row["lag_seconds"],
            materialized=True, **_figures(row),
        )  # fmt: skip
    counted = await connection.fetchrow(STATISTICS["recount"], campaign_id)
    lag = await connection.fetchval(STATISTICS["lag"])
    assert counted is not None  # authorized() found the campaign
    return CampaignStatistics(
        campaign_id=campaign_id, as_of=counted["as_of"], lag_seconds=lag, materialized=False,
        **_figures(counted),
    )  # fmt: skip


class CompareRequest(BaseModel):
    campaign_ids: list[UUID] = Field(min_length=1, max_length=MAX_COMPARED)


class ComparedCampaign(Figures):
    campaign_id: UUID
    name: str
    status: str
    enabled: bool
    deleted: bool
    as_of: datetime


class Totals(BaseModel):
    total_contacts: int
    contacts_started: int
    contacts_completed: int
    contacts_failed: int
    contacts_active: int
    contacts_responded: int
    messages_sent: int
    messages_failed: int
    messages_delivered: int
    messages_not_sent: int
    completion_rate: float
    response_rate: float
    delivery_rate: float
    contacts_opted_out: int
    opt_out_rate: float


class Comparison(BaseModel):
    campaigns: list[ComparedCampaign] = Field(description="In the order asked for")
    not_found: list[UUID] = Field(
        description="Ids that are no campaign the caller may view (answered as 404 one by one)"
    )
    totals: Totals = Field(description="Sums over the compared campaigns; rates of the sums")
    lag_seconds: float | None


@router.post(
    "/statistics/compare",
    response_model=Comparison,
    summary="Statistics of up to 100 campaigns side by side",
)
async def compare(request: CompareRequest, who: CurrentPrincipal, http: Request) -> Comparison:
    wanted = list(dict.fromkeys(request.campaign_ids))
    async with pool(http).acquire() as connection:
        rows = {r["id"]: r for r in await connection.fetch(STATISTICS["compared"], wanted)}
        visible = {
            campaign_id: row
            for campaign_id, row in rows.items()
            if permissions.decide(
                who.caller,
                permissions.CampaignOwnership(row["created_by"], row["organization_id"]),
                Action.VIEW,
            )
            is permissions.Decision.ALLOWED
        }
        ids = list(visible)
        counted = {
            r["campaign_id"]: r for r in await connection.fetch(STATISTICS["stored_many"], ids)
        }
        uncounted = [campaign_id for campaign_id in ids if campaign_id not in counted]
        if uncounted:  # no event has named them yet: counted now
            for r in await connection.fetch(STATISTICS["recount_many"], uncounted):
                counted[r["campaign_id"]] = r
        lag = await connection.fetchval(STATISTICS["lag"])
    campaigns = [
        _compared(campaign_id, row, counted[campaign_id]) for campaign_id, row in visible.items()
    ]
    campaigns.sort(key=lambda c: wanted.index(c.campaign_id))
    return Comparison(
        campaigns=campaigns,
        not_found=[c for c in wanted if c not in visible],
        totals=_totals(campaigns),
        lag_seconds=lag,
    )


def _compared(campaign_id: UUID, row: asyncpg.Record, figures: asyncpg.Record) -> ComparedCampaign:
    return ComparedCampaign(
        campaign_id=campaign_id,
        name=row["name"],
        status=row["status"],
        enabled=row["enabled"],
        deleted=row["deleted_at"] is not None,
        as_of=figures["as_of"],
        **_figures(figures),
    )


def _totals(campaigns: list[ComparedCampaign]) -> Totals:
    sums = {name: sum(getattr(c, name) for c in campaigns) for name in COUNTS}
    return Totals(**sums, **_rates(sums, total="total_contacts"), opt_out_rate=_opt_out_rate(sums))


def rate(numerator: int, denominator: int) -> float:
    """The SQL statistics_rate(): a percentage to two places, half away from zero, 0 over 0."""
    if denominator <= 0:
        return 0.0
    return float((Decimal(numerator * 100) / Decimal(denominator)).quantize(Decimal("0.01"),
                 rounding="ROUND_HALF_UP"))  # fmt: skip
