"""Bulk actions over contacts (specs 002/003), released batch by batch by the scheduler.

A periodic job takes an action whose batch is due (`FOR UPDATE SKIP LOCKED`, so two schedulers
never take the same one), resolves its selection into items on the first batch (set-based: a
selection of any size never passes through memory), applies the batch's contacts, records each
contact's outcome and the counters, sets the next batch's time (shared/domain/drip.py), and
emits progress, all in one transaction. A crash before the commit releases nothing; after it,
the batch is done. So every batch is released exactly once.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from services.scheduler import imports
from services.scheduler.actors import caller_of
from services.scheduler.changes import Accepted, apply_changes, lock_one
from services.scheduler.metrics import ACTION_ITEMS, Tally
from shared.csv_export import csv_bytes
from shared.db.campaign_filter import Where
from shared.db.contact_filter import add_contact_filter
from shared.db.pool import DbConnection
from shared.db.rows import BulkActionRow
from shared.db.sql import Queries
from shared.domain import campaigns, crm, drip, merge, permissions
from shared.domain.bulk_actions import ActionStatus, BulkActionType, ContactFilter
from shared.domain.campaigns import Refusal
from shared.domain.executions import ExecutionStatus
from shared.messaging.consumer import INFRASTRUCTURE_ERRORS
from shared.messaging.contracts import BulkActionProgress, MessageType, OpportunityStageChanged
from shared.messaging.envelope import Actor, Cause
from shared.messaging.transaction import Transaction, transaction_on
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
log = logging.getLogger(__name__)
ENROLMENT = Queries.load(Path(__file__).with_name("enrolment.sql"))  # shared with lifecycle
EXPORT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "telegram_username",
    "phone",
    "telegram_user_id",
    "time_zone",
    "tags",
    "custom_fields",
    "created_at",
)


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded, skipped, failed
    code: str
    message: str
    details: dict[str, Any] | None = None


async def release_batches(service: Service) -> int:
    """The periodic job: every batch that is due, one transaction each. Returns the batches."""
    released = 0
    while True:
        now = service.clock.now()
        failed: tuple[UUID, Exception] | None = None
        taken: UUID | None = None
        tally = Tally(ACTION_ITEMS)
        async with service.pool.acquire() as connection:
            try:
                async with transaction_on(connection, service.clock) as tx:
                    due = await connection.fetchrow(QUERIES["due_action"], now)
                    if due is None:
                        return released
                    action = BulkActionRow.from_row(due)
                    taken = action.id
                    await release(
                        tx,
                        action,
                        now,
                        service.settings.export_retention_days,
                        tally,
                    )
                tally.count()
            except INFRASTRUCTURE_ERRORS:
                raise  # the database is away: the job's next run tries again
            except Exception as exc:
                if taken is None:
                    raise
                # A batch that cannot be applied (a bug, data it cannot handle) fails its action
                # with the reason instead of blocking every action behind it.
                log.exception("bulk action %s: its batch failed", taken)
                failed = (taken, exc)
            if failed is not None:
                async with transaction_on(connection, service.clock) as tx:
                    row = await connection.fetchrow(
                        QUERIES["fail"],
                        failed[0],
                        f"{type(failed[1]).__name__}: {failed[1]}",
                        now,
                    )
                    assert row is not None
                    _report(
                        tx, BulkActionRow.from_row(row), 0, now, MessageType.BULK_ACTION_COMPLETED
                    )
        released += 1


async def release(
    tx: Transaction,
    action: BulkActionRow,
    now: datetime,
    export_days: int = 30,
    tally: Tally | None = None,
) -> None:
    """Release the action's next batch; its contacts' outcomes go into `tally`, for the caller
    to count once it has committed."""
    connection = tx.connection
    kind = BulkActionType(action.action)
    if action.status == ActionStatus.QUEUED:
        action = await _start(tx, action, kind, now, export_days)
    plan = action.plan
    if kind is BulkActionType.IMPORT_CONTACTS:
        await _release_import(tx, action, now, tally)
        return
    batch = await connection.fetch(
        QUERIES["claim_batch"], action.id, plan.batch_limit, action.last_contact_id
    )
    ids = [row["contact_id"] for row in batch]
    details = {row["contact_id"]: row["details"] for row in batch}
    batch_of = Batch(tx, action, ids, details, now)
    outcomes = await APPLY[kind](batch_of) if ids else {}
    order = list(outcomes)
    await connection.execute(
        QUERIES["record_items"],
        action.id,
        action.batches + 1,
        now,
        order,
        [outcomes[i].status for i in order],
        [outcomes[i].code for i in order],
        [outcomes[i].message for i in order],
        [outcomes[i].details for i in order],
    )
    last = ids[-1] if ids else action.last_contact_id
    more = bool(ids) and await connection.fetchval(QUERIES["any_pending"], action.id, last)
    results = [o.status for o in outcomes.values()]
    if tally is not None:
        tally.add(kind.value, results)
    await _count(tx, action, len(ids), results, more, now, last)
    if not more and kind is BulkActionType.EXPORT_CONTACTS:
        await connection.execute(QUERIES["close_export"], action.id, now)


async def _count(
    tx: Transaction,
    action: BulkActionRow,
    size: int,
    results: list[str],
    more: bool,
    now: datetime,
    last: UUID | None,
) -> None:
    """The batch's counters and the next batch's time (none when nothing is left), and its
    progress event (and the completion's)."""
    assert action.next_batch_at is not None  # due_action took it for its next_batch_at
    following = drip.next_batch_at(action.plan, action.next_batch_at, now) if more else None
    counted = await tx.connection.fetchrow(
        QUERIES["count_batch"],
        action.id,
        size,
        results.count("succeeded"),
        results.count("skipped"),
        results.count("failed"),
        now,
        not more,
        following,
        last,
    )
    assert counted is not None
    after = BulkActionRow.from_row(counted)
    _report(tx, after, size, now, MessageType.BULK_ACTION_PROGRESSED)
    if not more:
        _report(tx, after, size, now, MessageType.BULK_ACTION_COMPLETED)


async def _release_import(
    tx: Transaction, action: BulkActionRow, now: datetime, tally: Tally | None
) -> None:
    """An import's batch: its upload's next rows (services/scheduler/imports.py), with the
    import's campaign joined by add_to_campaign's rules."""
    campaign = action.params.get("campaign_id")

    async def enrol(contacts: list[UUID]) -> dict[UUID, tuple[str, str, str]]:
        outcomes = await _enrol(Batch(tx, action, contacts, {}, now), UUID(campaign), check=True)
        return {c: (o.status, o.code, o.message) for c, o in outcomes.items()}

    applied = await imports.apply_batch(
        tx, action, action.plan.batch_limit, now, enrol if campaign else None
    )
    if tally is not None:
        tally.add(action.action.value, applied.results)
    await _count(tx, action, len(applied.results), applied.results, applied.more, now, None)


async def _start(
    tx: Transaction,
    action: BulkActionRow,
    kind: BulkActionType,
    now: datetime,
    export_days: int,
) -> BulkActionRow:
    """The first batch: resolve the selection as the actor sees it now."""
    connection = tx.connection
    selection = action.selection
    if kind is BulkActionType.RESTORE_CONTACTS:
        await connection.execute(QUERIES["select_restorable"], action.id, action.source_action_id)
    elif kind is BulkActionType.IMPORT_CONTACTS:
        pass  # its rows are its upload's (counted in `total` when the action was recorded)
    else:
        caller = await caller_of(connection, _actor(action))
        only_own = _only_own(caller, kind)
        where = Where()
        where.bind(action.id)
        if selection.get("contact_ids") is not None:
            where.bind(selection["contact_ids"])
            add_contact_filter(where, caller, ContactFilter(), only_own=only_own)
            query = QUERIES["select_ids"]
        else:
            chosen = ContactFilter.model_validate(selection["filter"])
            add_contact_filter(where, caller, chosen, only_own=only_own)
            query = QUERIES["select_matching"]
        await connection.execute(query.format(where=where.sql), *where.values)
    if kind is BulkActionType.SEND_MESSAGE:
        await _start_carrier(tx, action, now)
    if kind is BulkActionType.EXPORT_CONTACTS:
        await connection.execute(
            QUERIES["open_export"], action.id, now + timedelta(days=export_days)
        )
        header = csv_bytes([EXPORT_COLUMNS])
        await connection.execute(QUERIES["export_chunk"], action.id, 0, header)
        await connection.execute(QUERIES["count_export"], action.id, 0, len(header))
    started: Mapping[str, Any] | None = await connection.fetchrow(QUERIES["start"], action.id, now)
    assert started is not None
    return BulkActionRow.from_row(started)


# The bulk actions that destroy or take away people data (issue 15, item 5).
CONTACT_ACTIONS = {
    BulkActionType.DELETE_CONTACTS: permissions.ContactAction.DELETE_CONTACTS,
    BulkActionType.EXPORT_CONTACTS: permissions.ContactAction.EXPORT_CONTACTS,
}


def _only_own(caller: permissions.Caller, kind: BulkActionType) -> bool:
    """A delete or export by someone who may not touch others' contacts selects only their own.
    The API refused an explicit selection of others' contacts already; this limits a filter,
    and an explicit one whose creator has lost the right since (an admin made a member)."""
    action = CONTACT_ACTIONS.get(kind)
    return action is not None and (
        permissions.decide_contacts(caller, action, only_own=False)
        is not permissions.Decision.ALLOWED
    )


async def _start_carrier(tx: Transaction, action: BulkActionRow, now: datetime) -> None:
    """A send_message action's own campaign starts with its first batch, the way every campaign
    changes (changes.py): locked, decided by the state machine, applied and announced, so the
    statistics and the activity feed see it start. One that is no longer a draft stays as it is."""
    carrier_id = await tx.connection.fetchval(QUERIES["carrier_campaign"], action.id)
    carrier = await lock_one(tx.connection, carrier_id) if carrier_id is not None else None
    if carrier is None:
        return
    change = campaigns.start_carrier(carrier.state)
    if isinstance(change, Refusal):
        log.info("bulk action %s: its campaign is not started: %s", action.id, change.detail)
        return
    await apply_changes(
        tx,
        [Accepted(carrier, change)],
        action.created_by,
        now,
        command="bulk_action.send_message",
        cause=Cause(_actor(action)),
        launched=True,
    )


@dataclass(frozen=True)
class Batch:
    """One batch of an action: its contacts (with what earlier actions recorded of them, for a
    restore) and the transaction it is applied in."""

    tx: Transaction
    action: BulkActionRow
    ids: list[UUID]
    details: dict[UUID, Any]
    now: datetime

    @property
    def connection(self) -> DbConnection:
        return self.tx.connection


Apply = Callable[[Batch], Awaitable[dict[UUID, Outcome]]]


async def _add_to_campaign(batch: Batch) -> dict[UUID, Outcome]:
    action = batch.action
    campaign_id = UUID(action.params["campaign_id"])
    return await _enrol(batch, campaign_id, check=True)


async def _send_message(batch: Batch) -> dict[UUID, Outcome]:
    connection, action = batch.connection, batch.action
    carrier = await connection.fetchval(QUERIES["carrier_campaign"], action.id)
    outcomes = await _enrol(batch, carrier, check=False)
    return {
        contact: Outcome(
            "succeeded", "queued_for_sending", "the message goes out at the account's pace"
        )
        if outcome.status == "succeeded"
        else outcome
        for contact, outcome in outcomes.items()
    }


async def _enrol(batch: Batch, campaign_id: UUID, *, check: bool) -> dict[UUID, Outcome]:
    """Executions for these contacts, with the same rules as adding contacts by hand."""
    connection, action, ids, now = batch.connection, batch.action, batch.ids, batch.now
    campaign = await lock_one(connection, campaign_id)
    refusal: Outcome | None = None
    if campaign is None or campaign.state.deleted:
        refusal = Outcome("failed", "campaign_not_found", "the campaign no longer exists")
    elif check:
        caller = await caller_of(connection, _actor(action))
        decision = permissions.decide(caller, campaign.ownership, permissions.Action.ADD_CONTACTS)
        if decision is not permissions.Decision.ALLOWED:
            refusal = Outcome(
                "failed", "permission_denied", "the creator may not add contacts to the campaign"
            )
    if refusal is not None:
        return dict.fromkeys(ids, refusal)
    assert campaign is not None
    row, state = campaign.row, campaign.state
    change = campaigns.add_contacts(state)
    if isinstance(change, Refusal):  # pragma: no cover - only a deleted campaign refuses
        return dict.fromkeys(ids, Outcome("failed", change.code, change.detail))
    added = await connection.fetch(
        ENROLMENT["add_contacts"],
        campaign_id,
        ids,
        row["organization_id"],
        action.created_by,
        row["telegram_account_id"],
        now,
    )
    if change.status is not state.status:  # a completed campaign comes back to life
        await apply_changes(
            batch.tx,
            [Accepted(campaign, change)],
            action.created_by,
            now,
            command="bulk_action.add_contacts",
            cause=Cause(_actor(action)),
        )
    outcomes = {}
    for contact in added:
        if contact["added"]:
            outcomes[contact["contact_id"]] = Outcome("succeeded", "added", "added to the campaign")
        elif contact["do_not_contact"]:
            outcomes[contact["contact_id"]] = Outcome(
                "skipped", "do_not_contact", "the contact is on the do-not-contact list"
            )
        elif contact["recently_contacted"]:
            outcomes[contact["contact_id"]] = Outcome(
                "skipped",
                "recently_contacted",
                "a campaign of the organization messaged the contact within its"
                " recontact_after_days",
            )
        elif contact["visible"]:
            outcomes[contact["contact_id"]] = Outcome(
                "skipped", "already_in_campaign", "the contact is already in the campaign"
            )
        else:
            outcomes[contact["contact_id"]] = _GONE
    return outcomes


_GONE = Outcome("failed", "contact_not_found", "the contact was deleted before its batch")


async def _tags(batch: Batch) -> dict[UUID, Outcome]:
    connection, action, ids, now = batch.connection, batch.action, batch.ids, batch.now
    params = action.params
    adding = action.action == BulkActionType.ADD_TAGS
    tags = params.get("tags") if adding or not params.get("all") else None
    query = QUERIES["add_tags" if adding else "remove_tags"]
    rows = {r["id"]: r["had"] for r in await connection.fetch(query, ids, tags, now)}
    outcomes: dict[UUID, Outcome] = {}
    for contact in ids:
        if contact not in rows:
            outcomes[contact] = _GONE
        elif adding:
            outcomes[contact] = (
                Outcome("skipped", "already_tagged", "the contact already had these tags")
                if rows[contact]
                else Outcome("succeeded", "tagged", "tags added")
            )
        else:
            outcomes[contact] = (
                Outcome("succeeded", "untagged", "tags removed")
                if rows[contact]
                else Outcome("skipped", "not_tagged", "the contact had none of these tags")
            )
    return outcomes


async def _delete(batch: Batch) -> dict[UUID, Outcome]:
    connection, ids, now = batch.connection, batch.ids, batch.now
    await connection.execute(QUERIES["lock_memberships"], ids)  # executions before contacts
    rows = {
        r["id"]: r["campaigns"]
        for r in await connection.fetch(QUERIES["delete_contacts"], ids, now)
    }
    return {
        contact: Outcome(
            "succeeded",
            "deleted",
            f"deleted, and removed from {len(rows[contact])} campaign(s)",
            {"campaigns": [str(c) for c in rows[contact]]},
        )
        if contact in rows
        else Outcome("skipped", "already_deleted", "the contact was already deleted")
        for contact in ids
    }


async def _restore(batch: Batch) -> dict[UUID, Outcome]:
    connection, ids, details, now = batch.connection, batch.ids, batch.details, batch.now
    back = {r["id"] for r in await connection.fetch(QUERIES["undelete_contacts"], ids, now)}
    memberships: dict[UUID, list[UUID]] = defaultdict(list)
    for contact in back:
        for campaign in (details.get(contact) or {}).get("campaigns", []):
            memberships[UUID(campaign)].append(contact)
    live = {
        r["id"]: r for r in await connection.fetch(QUERIES["live_campaigns"], list(memberships))
    }
    rejoined: dict[UUID, list[str]] = defaultdict(list)
    for campaign, contacts in memberships.items():
        if campaign not in live:
            continue
        owner = live[campaign]
        for row in await connection.fetch(
            ENROLMENT["add_contacts"],
            campaign,
            contacts,
            owner["organization_id"],
            owner["created_by"],
            owner["telegram_account_id"],
            now,
        ):
            if row["added"]:
                rejoined[row["contact_id"]].append(str(campaign))
    return {
        contact: Outcome(
            "succeeded",
            "restored",
            f"restored, back in {len(rejoined[contact])} campaign(s)",
            {"campaigns": rejoined[contact]},
        )
        if contact in back
        else Outcome("skipped", "not_deleted", "the contact was not deleted any more")
        for contact in ids
    }


async def _export(batch: Batch) -> dict[UUID, Outcome]:
    connection, action, ids = batch.connection, batch.action, batch.ids
    rows = await connection.fetch(QUERIES["export_rows"], ids)
    chunk = csv_bytes([[_cell(row[column]) for column in EXPORT_COLUMNS] for row in rows])
    await connection.execute(QUERIES["export_chunk"], action.id, action.batches + 1, chunk)
    await connection.execute(QUERIES["count_export"], action.id, len(rows), len(chunk))
    found = {row["id"] for row in rows}
    return {
        contact: Outcome("succeeded", "exported", "written to the file")
        if contact in found
        else _GONE
        for contact in ids
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else " ".join(value)
    if isinstance(value, (datetime, time)):
        return value.isoformat()
    return str(value)


async def _company_refusal(batch: Batch) -> Outcome | None:
    """The company must still exist in the action's context (it may be deleted after the
    action was created); its right to it was checked then, and companies are the context's."""
    action = batch.action
    found = await batch.connection.fetchval(
        QUERIES["company_of_action"],
        UUID(action.params["company_id"]),
        action.organization_id,
        action.created_by,
    )
    if found is None:
        return Outcome("failed", "company_not_found", "the company no longer exists")
    return None


async def _add_to_company(batch: Batch) -> dict[UUID, Outcome]:
    """Spec 003's "Add/Update to company": a contact in another company moves (a contact
    belongs to at most one), recorded with the company it left."""
    if (refusal := await _company_refusal(batch)) is not None:
        return dict.fromkeys(batch.ids, refusal)
    company = UUID(batch.action.params["company_id"])
    rows = {
        r["id"]: r["previous"]
        for r in await batch.connection.fetch(
            QUERIES["join_company"], batch.ids, company, batch.now
        )
    }
    outcomes: dict[UUID, Outcome] = {}
    for contact in batch.ids:
        if contact not in rows:
            outcomes[contact] = _GONE
        elif rows[contact] == company:
            outcomes[contact] = Outcome(
                "skipped", "already_in_company", "the contact is already in the company"
            )
        elif rows[contact] is None:
            outcomes[contact] = Outcome("succeeded", "added_to_company", "added to the company")
        else:
            outcomes[contact] = Outcome(
                "succeeded",
                "moved_to_company",
                "moved from another company",
                {"previous_company_id": str(rows[contact])},
            )
    return outcomes


async def _remove_from_company(batch: Batch) -> dict[UUID, Outcome]:
    if (refusal := await _company_refusal(batch)) is not None:
        return dict.fromkeys(batch.ids, refusal)
    company = UUID(batch.action.params["company_id"])
    rows = {
        r["id"]: r["member"]
        for r in await batch.connection.fetch(
            QUERIES["leave_company"], batch.ids, company, batch.now
        )
    }
    return {
        contact: _GONE
        if contact not in rows
        else Outcome("succeeded", "removed_from_company", "removed from the company")
        if rows[contact]
        else Outcome("skipped", "not_in_company", "the contact was not in the company")
        for contact in batch.ids
    }


async def _upsert_opportunities(batch: Batch) -> dict[UUID, Outcome]:
    """Spec 003's "Manage Opportunities": each contact's opportunity in the pipeline is created
    in the stage or moved there, with the action's optional fields (shared/domain/crm.upsert).
    Every opportunity that enters a stage is an opportunity.stage_changed event, in the
    batch's transaction."""
    connection, action, now = batch.connection, batch.action, batch.now
    params = action.params
    pipeline_id, stage_id = UUID(params["pipeline_id"]), UUID(params["stage_id"])
    stage = await connection.fetchrow(
        QUERIES["pipeline_of_action"],
        pipeline_id,
        action.organization_id,
        action.created_by,
        stage_id,
    )
    if stage is None:
        gone = Outcome("failed", "stage_not_found", "the pipeline or its stage no longer exists")
        return dict.fromkeys(batch.ids, gone)
    update = crm.OpportunityUpdate(
        stage_id,
        params.get("name"),
        Decimal(params["value"]) if params.get("value") is not None else None,
        crm.OpportunityStatus(params["status"]) if params.get("status") else None,
        params.get("custom_fields") or {},
    )
    contacts = {
        r["id"]: r for r in await connection.fetch(QUERIES["opportunity_contacts"], batch.ids)
    }
    current = {
        r["contact_id"]: r
        for r in await connection.fetch(
            QUERIES["current_opportunities"], pipeline_id, list(contacts)
        )
    }
    decided: dict[UUID, crm.Upsert] = {}
    for contact_id, contact in contacts.items():
        row = current.get(contact_id)
        existing = (
            crm.Opportunity(
                row["stage_id"],
                row["name"],
                row["value"],
                crm.OpportunityStatus(row["status"]),
                row["custom_fields"],
            )
            if row is not None
            else None
        )
        default_name = crm.display_name(
            contact["first_name"], contact["last_name"], contact["telegram_username"],
            contact["phone"],
        )  # fmt: skip
        decided[contact_id] = crm.upsert(existing, update, default_name)
    written = [c for c, d in decided.items() if d.outcome is not crm.Outcome.UNCHANGED]
    ids = {
        r["contact_id"]: r["id"]
        for r in await connection.fetch(
            QUERIES["upsert_opportunities"],
            pipeline_id,
            action.created_by,
            now,
            written,
            [decided[c].result.stage_id for c in written],
            [decided[c].result.name for c in written],
            [decided[c].result.value for c in written],
            [decided[c].result.status.value for c in written],
            [decided[c].result.custom_fields for c in written],
        )
    }
    for contact_id in written:
        result = decided[contact_id].result
        if decided[contact_id].stage_changed:
            previous = current.get(contact_id)
            event = OpportunityStageChanged(
                opportunity_id=ids[contact_id],
                pipeline_id=pipeline_id,
                contact_id=contact_id,
                previous_stage_id=previous["stage_id"] if previous is not None else None,
                stage_id=result.stage_id,
                stage_name=stage["stage_name"],
                status=result.status,
                value=result.value,
                source="bulk_action",
                bulk_action_id=action.id,
            )
            batch.tx.outbox.emit(event, key=ids[contact_id], cause=Cause(_actor(action)), at=now)
    outcomes: dict[UUID, Outcome] = {}
    for contact_id in batch.ids:
        if contact_id not in decided:
            outcomes[contact_id] = _GONE
            continue
        outcome = decided[contact_id].outcome
        opportunity = ids.get(contact_id) or current[contact_id]["id"]
        details = {"opportunity_id": str(opportunity)}
        if outcome is crm.Outcome.CREATED:
            message = f"opportunity created in {stage['stage_name']}"
            outcomes[contact_id] = Outcome("succeeded", "created", message, details)
        elif outcome is crm.Outcome.UPDATED:
            message = f"opportunity updated, in {stage['stage_name']}"
            outcomes[contact_id] = Outcome("succeeded", "updated", message, details)
        else:
            message = "the opportunity already had these values"
            outcomes[contact_id] = Outcome("skipped", "unchanged", message, details)
    return outcomes


async def _merge_contacts(batch: Batch) -> dict[UUID, Outcome]:
    """Spec 003's "Merge Contacts" (irreversible). Two forms: one pair (POST /contacts/merge:
    both contacts are the action's items, in one batch), or many confirmed pairs (POST
    /contacts/merge-duplicates: `params.pairs`, the masters are the items, so a batch of any
    mode takes whole pairs and each master's item reports its pair)."""
    params = batch.action.params
    pairs = params.get("pairs")
    if pairs is None:
        master_id, other_id = UUID(params["master_id"]), UUID(params["other_id"])
        if set(batch.ids) != {master_id, other_id}:  # one was deleted before the batch
            gone = Outcome(
                "failed", "contact_not_found", "a contact of the pair was deleted or merged already"
            )
            return dict.fromkeys(batch.ids, gone)
        return await _merge_pair(batch, master_id, other_id, params, batch.ids)
    by_master = {UUID(p["master_id"]): p for p in pairs}
    outcomes: dict[UUID, Outcome] = {}
    for master_id in batch.ids:
        pair = by_master[master_id]
        merged = await _merge_pair(
            batch,
            master_id,
            UUID(pair["other_id"]),
            {**params, "fields": pair.get("fields") or {}},
            [master_id],
        )
        outcomes[master_id] = merged[master_id]
    return outcomes


async def _merge_pair(
    batch: Batch, master_id: UUID, other_id: UUID, params: dict[str, Any], items: list[UUID]
) -> dict[UUID, Outcome]:
    """One pair, in the batch's transaction: the other contact's history moves to the master.
    In a campaign both are in, the execution further along (shared/domain/merge.py) ends up
    the master's and the other is cancelled with `merged`. Refused (each of `items` failed),
    changing nothing, while a send to either is in flight."""
    connection, now = batch.connection, batch.now
    pair = [master_id, other_id]
    contacts = {r["id"]: r for r in await connection.fetch(QUERIES["merge_lock_contacts"], pair)}

    def refused(code: str, message: str) -> dict[UUID, Outcome]:
        return dict.fromkeys(items, Outcome("failed", code, message))

    if master_id not in contacts or other_id not in contacts or not set(items) <= set(pair):
        return refused("contact_not_found", "a contact of the pair was deleted or merged already")
    master, other = contacts[master_id], contacts[other_id]
    fields = merge.merged_fields(
        master, other, {k: merge.Side(v) for k, v in (params.get("fields") or {}).items()}
    )
    if not merge.has_identifier(fields):
        return refused(
            "no_identifier", "the chosen fields leave no username, phone or Telegram user id"
        )
    executions = await connection.fetch(QUERIES["merge_executions"], pair, now)
    if any(e["in_flight"] for e in executions):
        return refused(
            "send_in_flight", "a message to one of the contacts is being sent; merge again soon"
        )
    by_campaign: dict[UUID, dict[UUID, Any]] = defaultdict(dict)
    for e in executions:
        by_campaign[e["campaign_id"]][e["contact_id"]] = e
    swaps: tuple[list[UUID], list[UUID]] = ([], [])
    losers: list[UUID] = []
    for both in by_campaign.values():
        if len(both) < 2:
            continue
        mine, theirs = both[master_id], both[other_id]
        if merge.further_along(_progress(mine), _progress(theirs)) is merge.Side.OTHER:
            swaps[0].append(mine["id"])
            swaps[1].append(theirs["id"])
        losers.append(theirs["id"])  # after a swap, the other's row holds the lost progress
    if swaps[0]:
        await connection.execute(QUERIES["merge_swap_executions"], *swaps, now)
    if losers:
        await connection.execute(QUERIES["merge_cancel_executions"], losers, now)
    await connection.execute(QUERIES["merge_lock_conversations"], pair)
    conversations = await connection.fetchrow(
        QUERIES["merge_conversations"], master_id, other_id, now
    )
    assert conversations is not None
    tags = merge.Combine(params.get("tags", "union"))
    custom = merge.Combine(params.get("custom_fields", "union"))
    moved = await connection.fetchrow(
        QUERIES["merge_move_history"],
        master_id,
        other_id,
        now,
        fields["first_name"],
        fields["last_name"],
        fields["telegram_username"],
        fields["phone"],
        fields["telegram_user_id"],
        fields["company_id"],
        merge.merged_tags(master["tags"], other["tags"], tags),
        merge.merged_custom_fields(master["custom_fields"], other["custom_fields"], custom),
        fields["time_zone"],
    )
    assert moved is not None
    details = {
        "master_id": str(master_id),
        "other_id": str(other_id),
        "campaigns": [str(c) for c in by_campaign],
        "executions_moved": moved["executions"],
        "executions_cancelled": [str(e) for e in losers],
        "kept_from_other": len(swaps[0]),
        "messages_moved": moved["messages"],
        "conversations_moved": conversations["moved"],
        "conversations_joined": conversations["joined"],
    }
    summary = (
        f"{moved['executions']} execution(s) and {moved['messages']} message(s) moved,"
        f" {len(losers)} execution(s) cancelled as merged"
    )
    done = {
        master_id: Outcome("succeeded", "merged", f"kept as the master: {summary}", details),
        other_id: Outcome("succeeded", "merged_into", f"merged into {master_id}", details),
    }
    return {contact: done[contact] for contact in items if contact in done}


def _progress(row: Mapping[str, Any]) -> merge.Progress:
    return merge.Progress(
        ExecutionStatus(row["status"]),
        started=row["started"],
        replied=row["replied"],
        messages_sent=row["messages_sent"],
        removed=row["removed"],
    )


APPLY: dict[BulkActionType, Apply] = {
    BulkActionType.ADD_TO_CAMPAIGN: _add_to_campaign,
    BulkActionType.SEND_MESSAGE: _send_message,
    BulkActionType.ADD_TAGS: _tags,
    BulkActionType.REMOVE_TAGS: _tags,
    BulkActionType.DELETE_CONTACTS: _delete,
    BulkActionType.RESTORE_CONTACTS: _restore,
    BulkActionType.EXPORT_CONTACTS: _export,
    BulkActionType.ADD_TO_COMPANY: _add_to_company,
    BulkActionType.REMOVE_FROM_COMPANY: _remove_from_company,
    BulkActionType.UPSERT_OPPORTUNITIES: _upsert_opportunities,
    BulkActionType.MERGE_CONTACTS: _merge_contacts,
}


def _actor(action: BulkActionRow) -> Actor:
    return Actor(user_id=action.created_by, organization_id=action.organization_id)


def _report(
    tx: Transaction, action: BulkActionRow, batch_size: int, now: datetime, kind: MessageType
) -> None:
    progress = BulkActionProgress.of(asdict(action), batch_size)
    tx.outbox.emit(progress, key=action.id, cause=Cause(_actor(action)), type=kind, at=now)
