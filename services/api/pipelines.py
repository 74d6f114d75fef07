"""/pipelines and /opportunities (issue 19; spec 003's "Manage Opportunities"): an
organization's pipelines with ordered stages, and a contact's opportunity in each. Bulk
create/update is the upsert_opportunities bulk action (services/scheduler/bulk_actions.py);
here opportunities are listed, read and edited one at a time. A stage change is an
`opportunity.stage_changed` event on dripline.opportunity.events, written in the edit's
transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from services.api import cursors
from services.api.auth import CurrentPrincipal
from services.api.bulk_actions.models import Money
from services.api.contacts import FieldValue, check_custom_fields
from services.api.deps import CurrentClock, Database
from services.api.paging import Keyset
from services.api.problems import Problem, field_error, invalid, not_found
from services.api.records import authorize_record
from shared.db.campaign_filter import like_pattern
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import crm, flows
from shared.domain.crm import OpportunityStatus
from shared.domain.permissions import Caller, RecordAction
from shared.messaging.contracts import OpportunityStageChanged
from shared.messaging.envelope import Cause
from shared.messaging.transaction import transaction

PIPELINES = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(tags=["pipelines"])

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: UUID | None = Field(default=None, description="An existing stage (kept, renamed, moved).")
    name: Name


class PipelineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    stages: list[StageIn] = Field(min_length=1, max_length=crm.MAX_STAGES)


class PipelinePatch(BaseModel):
    """`stages` is the whole list in its new order: a stage with an id keeps it (renamed or
    moved), one without is new, and one left out is removed (409 `stage_in_use` while
    opportunities stand in it)."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    stages: list[StageIn] | None = Field(default=None, min_length=1, max_length=crm.MAX_STAGES)


class Stage(BaseModel):
    id: UUID
    name: str
    position: int


class Pipeline(BaseModel):
    id: UUID
    organization_id: UUID | None
    owner_user_id: UUID
    name: str
    stages: list[Stage]
    created_at: datetime
    updated_at: datetime


class PipelinePage(BaseModel):
    items: list[Pipeline]
    next_cursor: str | None


class Opportunity(BaseModel):
    id: UUID
    pipeline_id: UUID
    contact_id: UUID
    stage_id: UUID
    stage_name: str
    name: str
    value: Decimal | None
    status: OpportunityStatus
    custom_fields: dict[str, Any]
    created_by: UUID
    created_at: datetime
    updated_at: datetime


class OpportunityPage(BaseModel):
    items: list[Opportunity]
    next_cursor: str | None


class OpportunityPatch(BaseModel):
    """Only the fields present change; null clears the value. custom_fields replaces the set."""

    model_config = ConfigDict(extra="forbid")
    stage_id: UUID | None = None
    name: Name | None = None
    value: Money | None = None
    status: OpportunityStatus | None = None
    custom_fields: dict[str, FieldValue] | None = None

    @field_validator("stage_id", "name", "status", "custom_fields", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    @field_validator("custom_fields")
    @classmethod
    def _custom(cls, value: dict[str, FieldValue] | None) -> dict[str, FieldValue] | None:
        return check_custom_fields(value) if value is not None else None


def _pipeline(row: Any) -> Pipeline:
    return Pipeline.model_validate(dict(row))


def _refused(refusal: crm.StageRefusal) -> Problem:
    status = 409 if refusal.code == "stage_in_use" else 422
    return Problem(status, refusal.code, "Cannot change the stages", refusal.detail)


@router.post("/pipelines", status_code=201, response_model=Pipeline, summary="Create a pipeline")
async def create_pipeline(
    body: PipelineCreate, who: CurrentPrincipal, database: Database, clock: CurrentClock
) -> Pipeline:
    if any(stage.id is not None for stage in body.stages):
        raise invalid([field_error("stages", "a new pipeline's stages have no ids yet")])
    plan = crm.plan_stages([], [crm.StageSpec(s.name) for s in body.stages])
    if isinstance(plan, crm.StageRefusal):
        raise _refused(plan)
    async with database.acquire() as connection, connection.transaction():
        pipeline_id = await connection.fetchval(
            PIPELINES["insert"],
            who.caller.organization_id,
            who.caller.user_id,
            body.name,
            clock.now(),
        )
        await connection.execute(
            PIPELINES["insert_stages"],
            pipeline_id,
            [name for name, _ in plan.create],
            [position for _, position in plan.create],
        )
        row = await connection.fetchrow(PIPELINES["get"], pipeline_id)
    return _pipeline(row)


@router.get("/pipelines", response_model=PipelinePage, summary="List pipelines")
async def list_pipelines(
    who: CurrentPrincipal,
    database: Database,
    search: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> PipelinePage:
    before = cursors.created_position(cursor)
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        rows = await connection.fetch(
            PIPELINES["list"],
            who.caller.organization_id,
            who.caller.user_id,
            like_pattern(search.strip()) if search and search.strip() else None,
            *before,
            keyset.fetch,
        )
    items, next_cursor = keyset.page(
        rows, _pipeline, lambda last: cursors.created_cursor(last.created_at, last.id)
    )
    return PipelinePage(items=items, next_cursor=next_cursor)


@router.get("/pipelines/{pipeline_id}", response_model=Pipeline, summary="Read a pipeline")
async def get_pipeline(pipeline_id: UUID, who: CurrentPrincipal, database: Database) -> Pipeline:
    async with database.acquire() as connection:
        row = await connection.fetchrow(PIPELINES["get"], pipeline_id)
    return _pipeline(authorize_record(who, row, "pipeline", RecordAction.VIEW))


@router.patch(
    "/pipelines/{pipeline_id}", response_model=Pipeline, summary="Rename, or edit the stages"
)
async def update_pipeline(
    pipeline_id: UUID,
    body: PipelinePatch,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
) -> Pipeline:
    if "name" in body.model_fields_set and body.name is None:
        raise invalid([field_error("name", "cannot be null")])
    if "stages" in body.model_fields_set and body.stages is None:
        raise invalid([field_error("stages", "cannot be null")])
    async with database.acquire() as connection, connection.transaction():
        row = authorize_record(
            who, await connection.fetchrow(PIPELINES["lock"], pipeline_id), "pipeline",
            RecordAction.EDIT,
        )  # fmt: skip
        await connection.execute(
            PIPELINES["rename"], pipeline_id, body.name or row["name"], clock.now()
        )
        if body.stages is not None:
            stages = await connection.fetch(PIPELINES["stage_ids"], pipeline_id)
            busy = await connection.fetch(PIPELINES["stages_in_use"], pipeline_id)
            in_use = frozenset(r["stage_id"] for r in busy)
            plan = crm.plan_stages(
                [r["id"] for r in stages],
                [crm.StageSpec(s.name, s.id) for s in body.stages],
                in_use,
            )
            if isinstance(plan, crm.StageRefusal):
                raise _refused(plan)
            await connection.execute(PIPELINES["remove_stages"], pipeline_id, list(plan.remove))
            await connection.execute(
                PIPELINES["move_stages"],
                pipeline_id,
                [i for i, _, _ in plan.keep],
                [name for _, name, _ in plan.keep],
                [position for _, _, position in plan.keep],
            )
            await connection.execute(
                PIPELINES["insert_stages"],
                pipeline_id,
                [name for name, _ in plan.create],
                [position for _, position in plan.create],
            )
        updated = await connection.fetchrow(PIPELINES["get"], pipeline_id)
    return _pipeline(updated)


@router.delete("/pipelines/{pipeline_id}", status_code=204, summary="Delete a pipeline")
async def delete_pipeline(pipeline_id: UUID, who: CurrentPrincipal, database: Database) -> None:
    """Its stages and opportunities go with it. Another member's pipeline is for owners and
    admins to delete (403 for a member)."""
    async with database.acquire() as connection, connection.transaction():
        authorize_record(
            who, await connection.fetchrow(PIPELINES["lock"], pipeline_id), "pipeline",
            RecordAction.DELETE,
        )  # fmt: skip
        await connection.execute(PIPELINES["delete"], pipeline_id)


@router.get(
    "/pipelines/{pipeline_id}/opportunities",
    response_model=OpportunityPage,
    summary="A pipeline's opportunities",
)
async def list_opportunities(
    pipeline_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    stage_id: UUID | None = None,
    status: OpportunityStatus | None = None,
    contact_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> OpportunityPage:
    before = cursors.created_position(cursor)
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        row = await connection.fetchrow(PIPELINES["get"], pipeline_id)
        authorize_record(who, row, "pipeline", RecordAction.VIEW)
        rows = await connection.fetch(
            PIPELINES["opportunities"],
            pipeline_id,
            stage_id,
            status.value if status else None,
            contact_id,
            *before,
            keyset.fetch,
        )
    items, next_cursor = keyset.page(
        rows,
        lambda r: Opportunity.model_validate(dict(r)),
        lambda last: cursors.created_cursor(last.created_at, last.id),
    )
    return OpportunityPage(items=items, next_cursor=next_cursor)


@router.get(
    "/opportunities/{opportunity_id}", response_model=Opportunity, summary="Read an opportunity"
)
async def get_opportunity(
    opportunity_id: UUID, who: CurrentPrincipal, database: Database
) -> Opportunity:
    async with database.acquire() as connection:
        row = await connection.fetchrow(PIPELINES["opportunity"], opportunity_id)
    return Opportunity.model_validate(
        dict(authorize_record(who, row, "opportunity", RecordAction.VIEW))
    )


@router.patch(
    "/opportunities/{opportunity_id}",
    response_model=Opportunity,
    summary="Edit an opportunity (a stage change is an event on Kafka)",
)
async def update_opportunity(
    opportunity_id: UUID,
    body: OpportunityPatch,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
) -> Opportunity:
    now = clock.now()
    async with transaction(database, clock) as tx:
        connection = tx.connection
        row = authorize_record(
            who, await connection.fetchrow(PIPELINES["lock_opportunity"], opportunity_id),
            "opportunity", RecordAction.EDIT,
        )  # fmt: skip
        values = {k: row[k] for k in ("stage_id", "name", "value", "status", "custom_fields")}
        values.update({name: getattr(body, name) for name in body.model_fields_set})
        stage = await connection.fetchrow(
            PIPELINES["stage_of"], values["stage_id"], row["pipeline_id"]
        )
        if stage is None:
            raise not_found("stage")
        status = OpportunityStatus(values["status"])
        await connection.execute(
            PIPELINES["update_opportunity"],
            opportunity_id,
            values["stage_id"],
            values["name"],
            values["value"],
            status.value,
            values["custom_fields"],
            now,
        )
        if values["stage_id"] != row["stage_id"]:
            event = OpportunityStageChanged(
                opportunity_id=opportunity_id,
                pipeline_id=row["pipeline_id"],
                contact_id=row["contact_id"],
                previous_stage_id=row["stage_id"],
                stage_id=values["stage_id"],
                stage_name=stage["name"],
                status=status,
                value=values["value"],
                source="api",
            )
            tx.outbox.emit(event, key=opportunity_id, cause=Cause(who.actor), at=now)
        updated = await connection.fetchrow(PIPELINES["opportunity"], opportunity_id)
    assert updated is not None
    return Opportunity.model_validate(dict(updated))


async def flow_errors(
    connection: DbConnection, caller: Caller, flow: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """For a flow being saved: `unknown_pipeline` for each set_opportunity_stage node or
    opportunity_stage condition naming a pipeline the caller may not use (another context's, or
    none), `unknown_stage` for one naming a stage that is not that pipeline's (a malformed id is
    the flow validation's `invalid_field`)."""
    named = flows.pipeline_references(flow)
    if not named:
        return []
    rows = await connection.fetch(
        PIPELINES["flow_stages"],
        [r.pipeline_id for r in named],
        [r.stage_id for r in named],
        caller.organization_id,
        caller.user_id,
    )
    known = {(r["pipeline_id"], r["stage_id"]): r["stage_known"] for r in rows}
    errors = []
    for ref in named:
        stage_known = known.get((ref.pipeline_id, ref.stage_id))
        if stage_known is None:
            code, field = "unknown_pipeline", ref.field.removesuffix("stage_id") + "pipeline_id"
            message = f"no pipeline {ref.pipeline_id} in this organization"
        elif not stage_known:
            code, field = "unknown_stage", ref.field
            message = f"pipeline {ref.pipeline_id} has no stage {ref.stage_id}"
        else:
            continue
        errors.append(
            {
                "type": code,
                "code": code,
                "field": f"flow.{field}",
                "message": message,
                "node_id": ref.node_id,
            }
        )
    return errors
