"""import_contacts: one batch of an upload's rows (issue 19, item 4), applied in the batch's
transaction by services/scheduler/bulk_actions.py, which has taken the action's row lock.

The batch's rows are read (never the whole upload), each becomes a contact or a reason
(shared/domain/imports.contact_row); the contacts they name are found and locked with one
query (contact.upsert's rule: external id, else username, else phone; imports.match), the rows
are decided in line order in memory, so that two rows of the batch for the same person end up
as one contact, and then written with one INSERT and one UPDATE. The import's tags are added,
and the contacts added to its campaign with add_to_campaign's rules, in the same transaction.
Each row's outcome is recorded on the row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from shared.db.rows import BulkActionRow
from shared.db.sql import Queries
from shared.domain import imports
from shared.domain.imports import ContactRow, ContactState, Format, Known
from shared.messaging.transaction import Transaction

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


@dataclass(frozen=True)
class RowOutcome:
    status: str  # succeeded, skipped, failed
    code: str
    message: str
    contact_id: UUID | None = None
    details: dict[str, Any] | None = None


# The campaign part: the contacts to add, answered per contact with (status, code, message).
Enrol = Callable[[list[UUID]], Awaitable[dict[UUID, tuple[str, str, str]]]]


@dataclass(frozen=True)
class Applied:
    results: list[str]  # each row's status
    more: bool


async def apply_batch(
    tx: Transaction, action: BulkActionRow, limit: int, now: datetime, enrol: Enrol | None
) -> Applied:
    connection = tx.connection
    import_id = UUID(action.params["import_id"])
    format = Format(await connection.fetchval(QUERIES["format"], import_id))
    rows = await connection.fetch(QUERIES["claim_rows"], import_id, limit)
    outcomes: dict[int, RowOutcome] = {}
    parsed: list[tuple[int, ContactRow]] = []
    for row in rows:
        line = row["line"]
        if row["parse_error"] is not None:
            code = row["parse_error"]
            outcomes[line] = RowOutcome("failed", code, imports.PARSE_ERRORS[code])
            continue
        meant = imports.contact_row(row["data"], format)
        if isinstance(meant, ContactRow):
            parsed.append((line, meant))
            continue
        outcomes[line] = RowOutcome(
            "failed",
            meant[0].code,
            "; ".join(f"{p.field}: {p.message}" for p in meant),
            details={"errors": [asdict(p) for p in meant]},
        )
    tags = tuple(action.params.get("tags") or ())
    written = await _apply(tx, action, import_id, parsed, tags, now, outcomes)
    if enrol is not None and written:
        joined = await enrol(written)
        for line, outcome in list(outcomes.items()):
            if outcome.status == "succeeded" and outcome.contact_id in joined:
                status, code, message = joined[outcome.contact_id]
                details = {**(outcome.details or {}), "campaign": code, "campaign_status": status}
                outcomes[line] = RowOutcome(
                    outcome.status,
                    outcome.code,
                    f"{outcome.message}; campaign: {message}",
                    outcome.contact_id,
                    details,
                )
    order = sorted(outcomes)
    await connection.execute(
        QUERIES["record_rows"],
        import_id,
        action.batches + 1,
        now,
        order,
        [outcomes[line].status for line in order],
        [outcomes[line].code for line in order],
        [outcomes[line].message for line in order],
        [outcomes[line].contact_id for line in order],
        [outcomes[line].details for line in order],
    )
    more = bool(rows) and await connection.fetchval(QUERIES["any_pending"], import_id)
    return Applied([outcomes[line].status for line in order], bool(more))


async def _apply(
    tx: Transaction,
    action: BulkActionRow,
    import_id: UUID,
    parsed: list[tuple[int, ContactRow]],
    tags: tuple[str, ...],
    now: datetime,
    outcomes: dict[int, RowOutcome],
) -> list[UUID]:
    """Decide and write the readable rows; returns the contacts written, in first-row order."""
    connection = tx.connection
    found = await connection.fetch(
        QUERIES["candidates"],
        action.organization_id,
        action.created_by,
        sorted({r.external_id for _, r in parsed if r.external_id is not None}),
        sorted({r.telegram_username.lower() for _, r in parsed if r.telegram_username}),
        sorted({r.phone for _, r in parsed if r.phone is not None}),
    )
    by_external: dict[str, Known] = {}
    by_username: dict[str, Known] = {}
    by_phone: dict[str, Known] = {}
    states: dict[UUID, ContactState] = {}
    for c in sorted(found, key=lambda c: (c["created_at"], c["id"])):  # the oldest wins
        known = Known(c["id"], c["deleted"], c["external_id"])
        if c["external_id"] is not None:
            by_external[c["external_id"]] = known
        if not c["deleted"]:
            if c["telegram_username"]:
                by_username.setdefault(c["telegram_username"].lower(), known)
            if c["phone"]:
                by_phone.setdefault(c["phone"], known)
        states[c["id"]] = ContactState(
            c["external_id"], c["telegram_username"], c["phone"], c["telegram_user_id"],
            c["first_name"], c["last_name"], tuple(c["tags"]), dict(c["custom_fields"]),
            c["time_zone"],
        )  # fmt: skip
    earlier = {
        r["contact_id"]: r["line"]
        for r in await connection.fetch(QUERIES["earlier_rows"], import_id, list(states))
    }
    created: dict[UUID, ContactState] = {}
    updated: set[UUID] = set()
    for line, row in parsed:
        decided = imports.match(
            row,
            by_external.get(row.external_id) if row.external_id else None,
            by_username.get(row.telegram_username.lower()) if row.telegram_username else None,
            by_phone.get(row.phone) if row.phone else None,
        )
        if isinstance(decided, imports.Refused):
            outcomes[line] = RowOutcome("failed", decided.code, decided.message)
            continue
        if isinstance(decided, imports.Duplicate):
            outcomes[line] = RowOutcome(
                "skipped",
                "duplicate",
                f"the row's identifiers find two contacts ({decided.contact_id} and"
                f" {decided.other_id}); merge them (POST /contacts/merge), then import it again",
                decided.contact_id,
                {"other_contact_id": str(decided.other_id)},
            )
            continue
        if isinstance(decided, imports.Create):
            contact_id = uuid4()
            state = imports.applied(None, row, tags)
            created[contact_id] = state
            earlier[contact_id] = line
            outcome = RowOutcome("succeeded", "created", "contact created", contact_id)
        else:
            contact_id = decided.contact_id
            state = imports.applied(states.get(contact_id) or created[contact_id], row, tags)
            if contact_id in created:
                created[contact_id] = state
            else:
                updated.add(contact_id)
            first = earlier.get(contact_id)
            if first is not None:
                outcome = RowOutcome(
                    "succeeded",
                    "duplicate_merged",
                    f"the same contact as line {first}: merged into it",
                    contact_id,
                    {"first_line": first, "matched_by": decided.via},
                )
            else:
                earlier[contact_id] = line
                outcome = RowOutcome(
                    "succeeded",
                    "updated",
                    f"contact updated (found by {decided.via})",
                    contact_id,
                    {"matched_by": decided.via},
                )
        states[contact_id] = state
        _register(contact_id, state, by_external, by_username, by_phone)
        outcomes[line] = outcome
    if created:
        await connection.execute(
            QUERIES["insert_contacts"],
            action.organization_id,
            action.created_by,
            _records(created),
            now,
        )
    if updated:
        await connection.execute(
            QUERIES["update_contacts"], _records({i: states[i] for i in updated}), now
        )
    return list(dict.fromkeys(o.contact_id for o in outcomes.values()
                              if o.status == "succeeded" and o.contact_id is not None))  # fmt: skip


def _register(
    contact_id: UUID,
    state: ContactState,
    by_external: dict[str, Known],
    by_username: dict[str, Known],
    by_phone: dict[str, Known],
) -> None:
    """A later row of the batch finds what an earlier one wrote (an older contact keeps its
    place: the lookups keep the oldest)."""
    known = Known(contact_id, False, state.external_id)
    if state.external_id is not None:
        by_external.setdefault(state.external_id, known)
    if state.telegram_username:
        by_username.setdefault(state.telegram_username.lower(), known)
    if state.phone:
        by_phone.setdefault(state.phone, known)


def _records(states: dict[UUID, ContactState]) -> list[dict[str, Any]]:
    return [
        {
            "id": str(contact_id),
            "external_id": s.external_id,
            "telegram_username": s.telegram_username,
            "phone": s.phone,
            "telegram_user_id": s.telegram_user_id,
            "first_name": s.first_name,
            "last_name": s.last_name,
            "custom_fields": s.custom_fields,
            "tags": list(s.tags),
            "time_zone": s.time_zone,
        }
        for contact_id, s in states.items()
    ]
