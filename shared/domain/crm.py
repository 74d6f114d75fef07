"""Companies, pipelines and opportunities (issue 19; spec 003's "Manage Companies" and "Manage
Opportunities"): how a company's web domain and Telegram channel are written, how a pipeline's
stages are edited, and what a bulk "add/update opportunity" does to one contact. Pure functions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.domain.executions import IN_MOTION, UNFINISHED, ExecutionStatus

MAX_STAGES = 50


class OpportunityStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"
    ABANDONED = "abandoned"


_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_CHANNEL_LINK = re.compile(r"(?:https?://)?(?:t\.me|telegram\.me)/(?P<name>[^/?#]+)/?", re.I)


def normal_domain(value: str) -> str:
    """A company's web domain as one spelling: lower case, without a scheme, `www.`, a path or a
    trailing dot, so that `https://WWW.Acme.com/about` and `acme.com` are the same company."""
    text = value.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rstrip(".")
    text = text.removeprefix("www.")
    if not _DOMAIN.fullmatch(text):
        raise ValueError("a domain looks like example.com (letters, digits, hyphens and dots)")
    return text


def normal_channel(value: str) -> str:
    """A public Telegram channel by its username, from `@name`, `name` or a t.me link."""
    text = value.strip()
    link = _CHANNEL_LINK.fullmatch(text)
    name = link.group("name") if link else text.removeprefix("@")
    if not _CHANNEL.fullmatch(name):
        raise ValueError(
            "a Telegram channel is @name, name or https://t.me/name, where name has 4-32"
            " letters, digits or underscores and starts with a letter"
        )
    return name


# Pipelines --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSpec:
    """One stage of a pipeline as an edit asks for it: an existing stage by its id (renamed or
    moved), or a new one without."""

    name: str
    id: UUID | None = None


@dataclass(frozen=True)
class StagePlan:
    """The stages after an edit, in order (`position` is the index): `keep` are existing stages
    with their new name and position, `create` new ones, `remove` the stages that go."""

    keep: list[tuple[UUID, str, int]]
    create: list[tuple[str, int]]
    remove: frozenset[UUID]


@dataclass(frozen=True)
class StageRefusal:
    code: str
    detail: str


def plan_stages(
    existing: list[UUID], requested: list[StageSpec], in_use: frozenset[UUID] = frozenset()
) -> StagePlan | StageRefusal:
    """The stages a pipeline gets from `requested` (the whole list, in order). A stage keeps
    its id across renames and moves; one left out is removed, which is refused while
    opportunities stand in it (`in_use`): moving them first is the caller's decision."""
    if not 1 <= len(requested) <= MAX_STAGES:
        return StageRefusal("invalid_stages", f"a pipeline has 1 to {MAX_STAGES} stages")
    names = Counter(stage.name.strip().casefold() for stage in requested)
    twice = sorted(name for name, count in names.items() if count > 1)
    if twice:
        return StageRefusal("duplicate_stage", "stage names must differ: " + ", ".join(twice))
    ids = [stage.id for stage in requested if stage.id is not None]
    unknown = sorted(str(i) for i in set(ids) - set(existing))
    if unknown:
        return StageRefusal(
            "unknown_stage", "no such stage in this pipeline: " + ", ".join(unknown)
        )
    if len(ids) != len(set(ids)):
        return StageRefusal("duplicate_stage", "a stage is named twice by its id")
    remove = frozenset(existing) - set(ids)
    busy = sorted(str(i) for i in remove & in_use)
    if busy:
        return StageRefusal(
            "stage_in_use",
            "move the opportunities out of a stage before removing it: " + ", ".join(busy),
        )
    keep = [(s.id, s.name.strip(), n) for n, s in enumerate(requested) if s.id is not None]
    create = [(s.name.strip(), n) for n, s in enumerate(requested) if s.id is None]
    return StagePlan(keep, create, remove)


# Opportunities ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Opportunity:
    stage_id: UUID
    name: str
    value: Decimal | None = None
    status: OpportunityStatus = OpportunityStatus.OPEN
    custom_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpportunityUpdate:
    """Spec 003's modal: the stage is required, every other field is optional and, when left
    out, keeps what the opportunity has (or the default of a new one). Custom fields merge:
    the keys given replace those values, the others stay."""

    stage_id: UUID
    name: str | None = None
    value: Decimal | None = None
    status: OpportunityStatus | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Upsert:
    outcome: Outcome
    result: Opportunity
    stage_changed: bool  # a new opportunity enters its stage too: other systems hear of it


def upsert(current: Opportunity | None, update: OpportunityUpdate, default_name: str) -> Upsert:
    """What the bulk "add/update opportunity" does to one contact's opportunity in a pipeline."""
    if current is None:
        created = Opportunity(
            update.stage_id,
            update.name or default_name,
            update.value,
            update.status or OpportunityStatus.OPEN,
            dict(update.custom_fields),
        )
        return Upsert(Outcome.CREATED, created, stage_changed=True)
    result = replace(
        current,
        stage_id=update.stage_id,
        name=update.name if update.name is not None else current.name,
        value=update.value if update.value is not None else current.value,
        status=update.status if update.status is not None else current.status,
        custom_fields={**current.custom_fields, **update.custom_fields},
    )
    if result == current:
        return Upsert(Outcome.UNCHANGED, current, stage_changed=False)
    return Upsert(Outcome.UPDATED, result, stage_changed=result.stage_id != current.stage_id)


def display_name(
    first_name: str | None, last_name: str | None, username: str | None, phone: str | None
) -> str:
    """A new opportunity's name when the action gives none: the contact as people call it."""
    full = " ".join(part for part in (first_name, last_name) if part)
    return full or (f"@{username}" if username else None) or phone or "Contact"


# A company's reply (issue 19, item 5) --------------------------------------------------------

COMPANY_REPLIED = "company_replied"  # the reason written on the executions it stops or pauses


class CompanyOnReply(StrEnum):
    """A campaign's `response_handling.stop_company_on_reply`: what one contact's reply does to
    the other contacts of the same company in that campaign."""

    OFF = "off"
    STOP = "stop"  # cancelled, as a stop does
    PAUSE = "pause"  # paused where they stand, as a campaign pause does


def on_company_reply(
    mode: CompanyOnReply, status: ExecutionStatus, *, taken_over: bool = False
) -> ExecutionStatus | None:
    """What becomes of a colleague's execution (status `status`) when another contact of the
    same company replies in the campaign; None leaves it as it is. Stop cancels an unfinished
    one; pause pauses one in motion (one already paused stays as it is). A conversation a
    person took over (docs/inbox.md) is theirs: left alone."""
    if mode is CompanyOnReply.OFF or taken_over:
        return None
    if mode is CompanyOnReply.STOP and status in UNFINISHED:
        return ExecutionStatus.CANCELLED
    if mode is CompanyOnReply.PAUSE and status in IN_MOTION:
        return ExecutionStatus.PAUSED
    return None
