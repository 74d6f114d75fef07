"""Merging two contacts (spec 003's "Merge Contacts"; issue 19, item 1). Pure rules.

The caller picks the master and, per field, whose value to keep; tags and custom fields are
the union of both unless told to keep the master's. Where both contacts are in the same
campaign, the execution further along is kept (it becomes the master's) and the other is
cancelled with `merged`, so the merge never makes anyone get a message again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from shared.domain.executions import ExecutionStatus

# The fields a caller chooses between, one value each (`fields`: name -> "master" | "other").
CHOSEN_FIELDS = (
    "first_name",
    "last_name",
    "telegram_username",
    "phone",
    "telegram_user_id",
    "company_id",
    "time_zone",
)
MERGED_REASON = "merged"
IDENTIFIERS = ("telegram_username", "phone", "telegram_user_id")


class Side(StrEnum):
    MASTER = "master"
    OTHER = "other"


class Combine(StrEnum):
    UNION = "union"  # both contacts' values (the master's win for a custom field both have)
    MASTER = "master"  # the master's only


def merged_fields(
    master: Mapping[str, Any], other: Mapping[str, Any], choices: Mapping[str, Side]
) -> dict[str, Any]:
    """The master's chosen fields after the merge. A field not chosen keeps the master's value,
    unless the master has none and the other has one (nothing is lost by default)."""
    result: dict[str, Any] = {}
    for field in CHOSEN_FIELDS:
        side = choices.get(field)
        if side is Side.OTHER:
            result[field] = other.get(field)
        elif side is Side.MASTER:
            result[field] = master.get(field)
        else:
            mine = master.get(field)
            result[field] = mine if mine is not None else other.get(field)
    return result


def has_identifier(fields: Mapping[str, Any]) -> bool:
    """A contact needs one way to reach it: a username, a phone or a Telegram user id."""
    return any(fields.get(f) is not None for f in IDENTIFIERS)


def merged_tags(master: list[str], other: list[str], combine: Combine) -> list[str]:
    if combine is Combine.MASTER:
        return sorted(set(master))
    return sorted(set(master) | set(other))


def merged_custom_fields(
    master: Mapping[str, Any], other: Mapping[str, Any], combine: Combine
) -> dict[str, Any]:
    if combine is Combine.MASTER:
        return dict(master)
    return {**other, **master}


class Stage(IntEnum):
    """How far an execution got, for the comparison (higher is further)."""

    REMOVED = 0  # removed from the campaign (its history stays, out of the figures)
    ENDED_BADLY = 1  # failed or cancelled
    NOT_STARTED = 2  # pending, nothing happened yet
    STARTED = 3  # running, waiting or paused after starting
    COMPLETED = 4


@dataclass(frozen=True)
class Progress:
    """What decides which of two executions in one campaign is further along."""

    status: ExecutionStatus
    started: bool
    replied: bool  # the contact answered in this execution
    messages_sent: int  # outgoing messages recorded (sent, delivered, read, queued, unknown)
    removed: bool = False


def stage(progress: Progress) -> Stage:
    if progress.removed:
        return Stage.REMOVED
    if progress.status is ExecutionStatus.COMPLETED:
        return Stage.COMPLETED
    if progress.status in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
        return Stage.ENDED_BADLY
    if progress.started or progress.messages_sent > 0:
        return Stage.STARTED
    return Stage.NOT_STARTED


def further_along(master: Progress, other: Progress) -> Side:
    """Which execution to keep. A reply outranks everything (it is the conversation); then the
    stage; then how many messages went out. A tie keeps the master's."""

    def rank(p: Progress) -> tuple[bool, bool, Stage, int]:
        return (not p.removed, p.replied, stage(p), p.messages_sent)

    return Side.OTHER if rank(other) > rank(master) else Side.MASTER
