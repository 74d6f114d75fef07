"""Merging contacts (spec 003's "Merge Contacts"; issue 19, items 1 and 6).

`POST /contacts/merge` records a `merge_contacts` bulk action over exactly the two contacts,
all at once or scheduled; the scheduler applies it in one transaction
(services/scheduler/bulk_actions.py), with per-item results and progress events like every
bulk action, which is also how the statistics hear of the executions it changed.
`GET /contacts/duplicates` lists candidate pairs for confirmation; `POST
/contacts/merge-duplicates` merges the confirmed ones as one `merge_contacts` bulk action in any
mode (all at once, scheduled, drip), a pair per item (its master).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api import cursors
from services.api.auth import CurrentPrincipal
from services.api.bulk_actions import parameters, routes
from services.api.bulk_actions.models import BulkAction, DripSettings, Name
from services.api.deps import CurrentClock, CurrentSettings, Database
from services.api.paging import Keyset
from services.api.problems import Problem, field_error, invalid, not_found
from shared.db.sql import Queries
from shared.domain import drip, merge
from shared.domain.bulk_actions import BulkActionType, Mode
from shared.domain.drip import Plan
from shared.domain.merge import Combine, Side
from shared.domain.moments import Moment
from shared.domain.permissions import (
    CONTACT_REFUSALS,
    Caller,
    ContactAction,
    Decision,
    decide_contacts,
)

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
    mode: Literal[Mode.ALL_AT_ONCE, Mode.SCHEDULED] = Field(
        default=Mode.ALL_AT_ONCE,
        description="all_at_once, or scheduled (at `start_at`). A single pair is one batch: to"
        " drip merges, use POST /contacts/merge-duplicates.",
    )
    start_at: Moment | None = Field(default=None, description="scheduled mode: when.")

    @model_validator(mode="after")
    def _scheduled(self) -> MergeRequest:
        if (self.mode is Mode.SCHEDULED) != (self.start_at is not None):
            raise ValueError("start_at goes with mode scheduled, and only with it")
        return self


MAX_PAIRS = 1000


class MergePair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    master_id: UUID = Field(description="The contact that remains.")
    other_id: UUID = Field(description="The contact merged into the master and removed.")
    fields: dict[str, Side] = Field(
        default_factory=dict, description="Per field, whose value to keep (as POST /merge)."
    )


class MergeDuplicatesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[MergePair] = Field(
        min_length=1,
        max_length=MAX_PAIRS,
        description="The confirmed pairs (from GET /contacts/duplicates, or any): a contact in"
        " one pair only.",
    )
    tags: Combine = Field(default=Combine.UNION, description="`union` or the `master`'s only.")
    custom_fields: Combine = Field(
        default=Combine.UNION,
        description="`union` (the master's value wins where both have one) or the `master`'s.",
    )
    confirm: bool = Field(
        default=False, description="Must be true: the merges cannot be undone. " + IRREVERSIBLE
    )
    name: Name | None = Field(default=None, description="The bulk action's name.")
    mode: Mode = Mode.ALL_AT_ONCE
    start_at: Moment | None = Field(default=None, description="scheduled mode: when.")
    drip: DripSettings | None = Field(
        default=None, description="drip mode: `batch_size` pairs per batch."
    )

    @model_validator(mode="after")
    def _consistent(self) -> MergeDuplicatesRequest:
        if (self.mode is Mode.DRIP) != (self.drip is not None):
            raise ValueError("drip settings go with mode drip, and only with it")
        if (self.mode is Mode.SCHEDULED) != (self.start_at is not None):
            raise ValueError("start_at goes with mode scheduled, and only with it")
        return self


def _refuse_confirmation(confirm: bool) -> None:
    if not confirm:
        detail = "set confirm: true. " + IRREVERSIBLE
        raise Problem(422, "confirmation_required", "Confirmation required", detail)


def _check_may_merge(caller: Caller, owners: list[UUID]) -> None:
    """Merging across owners is for owners and admins (issue 19, item 6)."""
    only_own = all(owner == caller.user_id for owner in owners)
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
    _refuse_confirmation(body.confirm)
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
        _check_may_merge(caller, [r["owner_user_id"] for r in rows.values()])
        chosen = merge.merged_fields(rows[body.master_id], rows[body.other_id], body.fields)
        if not merge.has_identifier(chosen):
            raise invalid(
                [field_error("fields", "the merged contact needs a username, phone or user id")]
            )
        params = json.loads(
            body.model_dump_json(include={"master_id", "other_id", "fields", "tags"})
        ) | {"custom_fields": body.custom_fields.value}
        plan = Plan(body.mode, start_at=body.start_at)
        await connection.execute(
            MERGE["insert_action"],
            action_id,
            caller.organization_id,
            caller.user_id,
            body.name or "Merge contacts",
            BulkActionType.MERGE_CONTACTS.value,
            plan.mode.value,
            {"contact_ids": [str(i) for i in pair]},
            params,
            *parameters.plan_columns(plan),
            drip.first_batch_at(plan, now),
            None,
            now,
        )
    response.headers["Location"] = f"/bulk-actions/{action_id}"
    return await routes.read(database, settings, who, action_id)


@router.post(
    "/merge-duplicates",
    status_code=202,
    response_model=BulkAction,
    summary="Merge confirmed duplicate pairs (irreversible), in any bulk mode",
    description=IRREVERSIBLE
    + " Requires `confirm: true`. Each pair is merged as POST /contacts/merge merges one, as"
    " one `merge_contacts` bulk action in any mode (all_at_once, scheduled, drip with"
    " `batch_size` pairs per batch); each pair's master is an item, whose outcome names both."
    " A member may merge only contacts they created (403 `merge_not_own`).",
)
async def merge_duplicates(
    body: MergeDuplicatesRequest,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
    response: Response,
) -> BulkAction:
    _refuse_confirmation(body.confirm)
    errors: list[dict[str, Any]] = []
    seen: set[UUID] = set()
    for n, pair in enumerate(body.pairs):
        if pair.master_id == pair.other_id:
            errors.append(
                field_error(f"pairs.{n}.other_id", "a contact cannot be merged into itself")
            )
        elif {pair.master_id, pair.other_id} & seen:
            errors.append(field_error(f"pairs.{n}", "a contact may be in one pair only"))
        seen |= {pair.master_id, pair.other_id}
        errors.extend(
            field_error(f"pairs.{n}.fields.{f}", "not a field to choose")
            for f in sorted(set(pair.fields) - set(merge.CHOSEN_FIELDS))
        )
    if errors:
        raise invalid(errors)
    caller = who.caller
    now = clock.now()
    action_id = uuid4()
    async with database.acquire() as connection, connection.transaction():
        rows = {
            r["id"]: r
            for r in await connection.fetch(
                MERGE["contacts"], list(seen), caller.organization_id, caller.user_id
            )
        }
        if len(rows) < len(seen):
            raise not_found("contact")
        _check_may_merge(caller, [r["owner_user_id"] for r in rows.values()])
        errors = [
            field_error(
                f"pairs.{n}.fields", "the merged contact needs a username, phone or user id"
            )
            for n, pair in enumerate(body.pairs)
            if not merge.has_identifier(
                merge.merged_fields(rows[pair.master_id], rows[pair.other_id], pair.fields)
            )
        ]
        if errors:
            raise invalid(errors)
        params = {
            "pairs": [json.loads(pair.model_dump_json()) for pair in body.pairs],
            "tags": body.tags.value,
            "custom_fields": body.custom_fields.value,
        }
        plan = parameters.plan_of(body.mode, body.start_at, body.drip)
        await connection.execute(
            MERGE["insert_action"],
            action_id,
            caller.organization_id,
            caller.user_id,
            body.name or "Merge duplicates",
            BulkActionType.MERGE_CONTACTS.value,
            plan.mode.value,
            {"contact_ids": [str(pair.master_id) for pair in body.pairs]},
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
