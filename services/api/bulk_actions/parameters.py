"""What a bulk action's request means: its action's params (validated, and checked against
what the caller may use), its selection of contacts, and its plan (all at once, scheduled, or
drip) as the row's columns hold it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from services.api import imports
from services.api.auth import Principal
from services.api.bulk_actions.models import (
    BulkActionPatch,
    DripSettings,
    Money,
    Name,
    Tag,
)
from services.api.campaign_access import authorized
from services.api.contacts import FieldValue, check_custom_fields
from services.api.problems import Problem, field_error, invalid, not_found
from services.api.records import authorize_record
from shared.db.pool import DbConnection
from shared.db.rows import BulkActionRow
from shared.db.sql import Queries
from shared.domain import flows
from shared.domain.bulk_actions import BulkActionType, ContactFilter, Mode
from shared.domain.crm import OpportunityStatus
from shared.domain.drip import Plan
from shared.domain.permissions import (
    CONTACT_REFUSALS,
    Action,
    ContactAction,
    Decision,
    RecordAction,
    decide_contacts,
)
from shared.domain.windows import window_of

# The sending account must be one the caller sees, as telegram_accounts.py decides (get).
TELEGRAM_ACCOUNTS = Queries.load(Path(__file__).parent.with_name("telegram_accounts.sql"))
PARAMETERS = Queries.load(Path(__file__).with_suffix(".sql"))

UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}


class AddToCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign_id: UUID


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    telegram_account_id: UUID
    text: str = Field(min_length=1, max_length=4096)


class AddTags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[Tag] = Field(min_length=1, max_length=50)


class RemoveTags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[Tag] | None = Field(default=None, min_length=1, max_length=50)
    all: bool = False

    @model_validator(mode="after")
    def _which(self) -> RemoveTags:
        if (self.tags is None) == (not self.all):
            raise ValueError("give tags to remove, or all: true, not both")
        return self


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompanyParams(BaseModel):
    """add_to_company (a contact in another company moves) and remove_from_company."""

    model_config = ConfigDict(extra="forbid")
    company_id: UUID


class UpsertOpportunities(BaseModel):
    """Spec 003's "Add/Update Opportunity" modal: a pipeline and a stage, and optionally the
    opportunity's name, lead value, status and custom fields. A contact without an opportunity
    in the pipeline gets one (named after the contact unless `name` is given); one with an
    opportunity has it moved to the stage and the given fields changed (custom fields merge)."""

    model_config = ConfigDict(extra="forbid")
    pipeline_id: UUID
    stage_id: UUID
    name: Name | None = None
    value: Money | None = None
    status: OpportunityStatus | None = None
    custom_fields: dict[str, FieldValue] = Field(default_factory=dict)

    _custom = field_validator("custom_fields")(check_custom_fields)


class ImportContacts(BaseModel):
    """An upload (POST /imports) to apply: each row creates or updates a contact (the
    uploader owns the ones it creates); optionally every imported contact gets `tags` and is
    added to `campaign_id` (the rules and checks of add_to_campaign) in the same batch."""

    model_config = ConfigDict(extra="forbid")
    import_id: UUID
    tags: list[Tag] | None = Field(default=None, min_length=1, max_length=50)
    campaign_id: UUID | None = None


PARAMS: dict[BulkActionType, type[BaseModel]] = {
    BulkActionType.ADD_TO_CAMPAIGN: AddToCampaign,
    BulkActionType.SEND_MESSAGE: SendMessage,
    BulkActionType.ADD_TAGS: AddTags,
    BulkActionType.REMOVE_TAGS: RemoveTags,
    BulkActionType.DELETE_CONTACTS: NoParams,
    BulkActionType.EXPORT_CONTACTS: NoParams,
    BulkActionType.ADD_TO_COMPANY: CompanyParams,
    BulkActionType.REMOVE_FROM_COMPANY: CompanyParams,
    BulkActionType.UPSERT_OPPORTUNITIES: UpsertOpportunities,
    # Created by POST /contacts/merge only (services/api/merge.py); its params are not edited.
    BulkActionType.MERGE_CONTACTS: NoParams,
    BulkActionType.IMPORT_CONTACTS: ImportContacts,
}


def validated_params(kind: BulkActionType, raw: dict[str, Any]) -> dict[str, Any]:
    try:
        model = TypeAdapter(PARAMS[kind]).validate_python(raw)
    except ValidationError as exc:
        raise invalid(
            [
                field_error(
                    ".".join(["params", *(str(p) for p in error["loc"])]),
                    error["msg"],
                    error["type"],
                )
                for error in exc.errors()
            ]
        ) from None
    return json.loads(model.model_dump_json(exclude_defaults=False))  # type: ignore[no-any-return]


async def check_params(
    connection: DbConnection, who: Principal, kind: BulkActionType, params: dict[str, Any]
) -> None:
    """What the action points at must be the caller's to use: 404/403 as for the thing itself."""
    if kind is BulkActionType.IMPORT_CONTACTS:
        await imports.find(connection, who, UUID(params["import_id"]))
    if params.get("campaign_id") is not None and kind in (
        BulkActionType.ADD_TO_CAMPAIGN,
        BulkActionType.IMPORT_CONTACTS,
    ):
        campaign = await authorized(
            connection, who, UUID(params["campaign_id"]), Action.ADD_CONTACTS
        )
        if campaign["deleted_at"] is not None:
            raise Problem(
                409,
                "campaign_deleted",
                "Campaign deleted",
                "contacts cannot be added to a deleted campaign",
            )
    if kind is BulkActionType.SEND_MESSAGE:
        account = await connection.fetchrow(
            TELEGRAM_ACCOUNTS["get"],
            UUID(params["telegram_account_id"]),
            who.caller.organization_id,
            who.caller.user_id,
        )
        if account is None:
            raise not_found("telegram_account")
        _, problems = flows.validate(message_flow(params["text"]))
        if problems:
            raise invalid([field_error("params.text", p.message) for p in problems])
    if kind in (BulkActionType.ADD_TO_COMPANY, BulkActionType.REMOVE_FROM_COMPANY):
        company = await connection.fetchrow(PARAMETERS["company"], UUID(params["company_id"]))
        authorize_record(who, company, "company", RecordAction.EDIT)
    if kind is BulkActionType.UPSERT_OPPORTUNITIES:
        pipeline = await connection.fetchrow(
            PARAMETERS["pipeline_stage"], UUID(params["pipeline_id"]), UUID(params["stage_id"])
        )
        authorize_record(who, pipeline, "pipeline", RecordAction.EDIT)
        assert pipeline is not None
        if not pipeline["has_stage"]:
            raise not_found("stage")


# The bulk actions that destroy or take away people data (issue 15, item 5).
CONTACT_ACTIONS = {
    BulkActionType.DELETE_CONTACTS: ContactAction.DELETE_CONTACTS,
    BulkActionType.EXPORT_CONTACTS: ContactAction.EXPORT_CONTACTS,
}


async def check_selection(
    connection: DbConnection, who: Principal, kind: BulkActionType, selection: dict[str, Any]
) -> None:
    """A member may delete or export only the contacts they created: an explicit selection that
    names others' is refused whole (403 contacts_not_own), rather than quietly doing part of
    it. A selection by filter is limited to the caller's own contacts when the scheduler
    resolves it (services/scheduler/bulk_actions.py), so it needs no check here."""
    action = CONTACT_ACTIONS.get(kind)
    ids = selection.get("contact_ids")
    if action is None or ids is None:
        return
    caller = who.caller
    if decide_contacts(caller, action, only_own=False) is Decision.ALLOWED:
        return
    others = await connection.fetchval(
        PARAMETERS["others_contacts"], ids, caller.organization_id, caller.user_id
    )
    if decide_contacts(caller, action, only_own=others == 0) is not Decision.ALLOWED:
        raise Problem(
            403,
            CONTACT_REFUSALS[action],
            "Permission denied",
            f"{others} of the selected contacts were created by someone else; a member may"
            f" {kind.value.split('_')[0]} only the contacts they created",
        )


def message_flow(text: str) -> dict[str, Any]:
    return {
        "start": "message",
        "nodes": [
            {"id": "message", "type": "send_message", "text": text},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "message", "to": "end"}],
    }


def selection_of(
    contact_ids: list[UUID] | None,
    selection: ContactFilter | None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the action applies to: its contact ids, its filter, or (an import) its upload."""
    if contact_ids is None and selection is None and params and "import_id" in params:
        return {"import_id": params["import_id"]}
    if contact_ids is not None:
        return {"contact_ids": [str(i) for i in dict.fromkeys(contact_ids)]}
    assert selection is not None
    return {"filter": json.loads(selection.model_dump_json(exclude_none=True))}


def plan_of(mode: Mode, start_at: datetime | None, settings: DripSettings | None) -> Plan:
    if mode is not Mode.DRIP:
        return Plan(mode, start_at=start_at)
    assert settings is not None
    window = window_of(
        settings.timezone, settings.allowed_days, settings.window_start, settings.window_end
    )
    return Plan(
        mode,
        settings.start_at,
        settings.batch_size,
        timedelta(seconds=settings.every * UNIT_SECONDS[settings.unit]),
        window,
    )


def plan_columns(plan: Plan) -> tuple[Any, ...]:
    """batch_size, interval_seconds, allowed_days, window_start, window_end, timezone, start_at."""
    window = plan.window
    return (
        plan.batch_size,
        int(plan.every.total_seconds()) if plan.every else None,
        sorted(window.days) if window else None,
        window.start if window else None,
        window.end if window else None,
        window.timezone if window else "UTC",
        plan.start_at,
    )


def edited_plan(row: BulkActionRow, body: BulkActionPatch) -> Plan:
    """The action's plan with the patch applied; 422 if the result is not a plan."""
    mode = row.mode
    start_at = body.start_at if body.start_at is not None else row.start_at
    if mode is not Mode.DRIP:
        return Plan(mode, start_at=start_at)
    every = row.plan.every
    if body.every is not None or body.unit is not None:
        if body.every is None or body.unit is None:
            raise invalid([field_error("every", "give every and unit together")])
        every = timedelta(seconds=body.every * UNIT_SECONDS[body.unit])
    try:
        settings = DripSettings(
            batch_size=body.batch_size or row.batch_size,
            every=1,
            unit="minutes",
            allowed_days=body.allowed_days if body.allowed_days is not None else row.allowed_days,
            window_start=body.window_start
            if "window_start" in body.model_fields_set
            else row.window_start,
            window_end=body.window_end if "window_end" in body.model_fields_set else row.window_end,
            timezone=body.timezone or row.timezone,
            start_at=start_at,
        )
    except ValidationError as exc:
        raise invalid(
            [
                field_error(".".join(str(p) for p in e["loc"]) or "drip", e["msg"])
                for e in exc.errors()
            ]
        ) from None
    plan = plan_of(mode, None, settings)
    return Plan(mode, start_at, plan.batch_size, every, plan.window)
