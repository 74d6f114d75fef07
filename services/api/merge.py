"""Merging contacts (spec 003's "Merge Contacts"; issue 19, items 1 and 6).

`POST /contacts/merge` records a `merge_contacts` bulk action over exactly the two contacts,
all at once; the scheduler applies it in one transaction (services/scheduler/bulk_actions.py),
with per-item results and progress events like every bulk action, which is also how the
statistics hear of the executions it changed. `GET /contacts/duplicates` lists candidate pairs
for confirmation; each confirmed pair is one merge request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.api import cursors
from services.api.auth import CurrentPrincipal
from services.api.bulk_actions import parameters, routes
from services.api.bulk_actions.models import BulkAction, Name
from services.api.deps import CurrentClock, CurrentSettings, Database
from services.api.paging import Keyset
from services.api.problems import Problem, field_error, invalid, not_found
from shared.db.sql import Queries
from shared.domain import drip, merge
from shared.domain.bulk_actions import BulkActionType, Mode
from shared.domain.drip import Plan
from shared.domain.merge import Combine, Side
from shared.domain.permissions import CONTACT_REFUSALS, ContactAction, Decision, decide_contacts

MERGE = Queries.load(Path(__file__).with_suffix(".sql"))
router = APIRouter(prefix="/contacts", tags=["contacts"])

IRREVERSIBLE = (
    "Merging is irreversible (spec 003): the other contact is removed for good (kept only as a"
    " record that names its master) and its history becomes the master's."
)


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    master_id: UUID = Field(description="The contact that remains.")
    other_id: UUID = Field(description="The contact merged into the master and removed.")
    fields: dict[str, Side] = Field(
        default_factory=dict,
        description="Per field, whose value to keep (`master` or `other`): first_name,"
        " last_name, telegram_username, phone, telegram_user_id, company_id, time_zone. A"
        " field not named keeps the master's value, or the other's where the master has none.",
    )
    tags: Combine = Field(default=Combine.UNION, description="`union` or the `master`'s only.")
    custom_fields: Combine = Field(
        default=Combine.UNION,
        description="`union` (the master's value wins where both have one) or the `master`'s.",
    )
    confirm: bool = Field(
        default=False, description="Must be true: the merge cannot be undone. " + IRREVERSIBLE
    )
    name: Name | None = Field(default=None, description="The bulk action's name.")


class DuplicateContact(BaseModel):
    id: UUID
    owner_user_id: UUID
    first_name: str | None
    last_name: str | None
    telegram_username: str | None
    phone: str | None
    telegram_user_id: int | None


class DuplicatePair(BaseModel):
    first: DuplicateContact
    second: DuplicateContact
    matched_on: list[str] = Field(description="telegram_user_id, phone and/or telegram_username")


class DuplicatePage(BaseModel):
    items: list[DuplicatePair]
    next_cursor: str | None


class PairPosition(cursors.Position):
    a: UUID
    b: UUID


@router.post(
    "/merge",
    status_code=202,
    response_model=BulkAction,
    summary="Merge two contacts (irreversible)",
    description=IRREVERSIBLE
    + " Requires `confirm: true`. Runs as a `merge_contacts` bulk action; follow `Location`"
    " (`/bulk-actions/{id}`, and `/items` for each contact's outcome). A member may merge only"
    " contacts they created (403 `merge_not_own`).",
)
async def merge_contacts(
    body: MergeRequest,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
    response: Response,
) -> BulkAction:
    if not body.confirm:
        detail = "set confirm: true. " + IRREVERSIBLE
        raise Problem(422, "confirmation_required", "Confirmation required", detail)
    if body.master_id == body.other_id:
        raise invalid([field_error("other_id", "a contact cannot be merged into itself")])
    unknown = sorted(set(body.fields) - set(merge.CHOSEN_FIELDS))
    if unknown:
        raise invalid([field_error(f"fields.{f}", "not a field to choose") for f in unknown])
    caller = who.caller
    now = clock.now()
    action_id = uuid4()
    pair = [body.master_id, body.other_id]
    async with database.acquire() as connection, connection.transaction():
        rows = {
            r["id"]: r
            for r in await connection.fetch(
                MERGE["contacts"], pair, caller.organization_id, caller.user_id
            )
        }
        if len(rows) < 2:
            raise not_found("contact")
        only_own = all(r["owner_user_id"] == caller.user_id for r in rows.values())
        if (
            decide_contacts(caller, ContactAction.MERGE_CONTACTS, only_own=only_own)
            is not Decision.ALLOWED
        ):
            raise Problem(
                403,
                CONTACT_REFUSALS[ContactAction.MERGE_CONTACTS],
                "Permission denied",
                "a member may merge only the contacts they created; merging across owners is"
                " for owners and admins",
            )
        chosen = merge.merged_fields(rows[body.master_id], rows[body.other_id], body.fields)
        if not merge.has_identifier(chosen):
            raise invalid(
                [field_error("fields", "the merged contact needs a username, phone or user id")]
            )
        params = json.loads(
            body.model_dump_json(include={"master_id", "other_id", "fields", "tags"})
        ) | {"custom_fields": body.custom_fields.value}
        plan = Plan(Mode.ALL_AT_ONCE)
        await connection.execute(
            MERGE["insert_action"],
            action_id,
            caller.organization_id,
            caller.user_id,
            body.name or "Merge contacts",
            BulkActionType.MERGE_CONTACTS.value,
            Mode.ALL_AT_ONCE.value,
            {"contact_ids": [str(i) for i in pair]},
            params,
            *parameters.plan_columns(plan),
            drip.first_batch_at(plan, now),
            None,
            now,
        )
    response.headers["Location"] = f"/bulk-actions/{action_id}"
    return await routes.read(database, settings, who, action_id)


@router.get(
    "/duplicates",
    response_model=DuplicatePage,
    summary="Candidate duplicate contacts",
    description="Pairs of contacts that share a Telegram user id, a phone or a username (any"
    " case), for confirmation; merge each confirmed pair with `POST /contacts/merge`. Keyset"
    " pages in pair order.",
)
async def list_duplicates(
    who: CurrentPrincipal,
    database: Database,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> DuplicatePage:
    caller = who.caller
    after = cursors.decode(cursor, PairPosition) if cursor else None
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        pairs = await connection.fetch(
            MERGE["duplicates"],
            caller.organization_id,
            caller.user_id,
            after.a if after else None,
            after.b if after else None,
            keyset.fetch,
        )
        ids = list({i for p in pairs for i in (p["first_id"], p["second_id"])})
        found = {
            r["id"]: DuplicateContact.model_validate(dict(r))
            for r in await connection.fetch(
                MERGE["contacts"], ids, caller.organization_id, caller.user_id
            )
        }

    def item(row: Any) -> DuplicatePair:
        return DuplicatePair(
            first=found[row["first_id"]],
            second=found[row["second_id"]],
            matched_on=list(row["matched_on"]),
        )

    items, next_cursor = keyset.page(
        pairs, item, lambda p: cursors.encode(a=p.first.id, b=p.second.id)
    )
    return DuplicatePage(items=items, next_cursor=next_cursor)
