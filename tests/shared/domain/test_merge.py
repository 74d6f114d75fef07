"""Merging contacts (shared/domain/merge.py): which execution is further along, and which
field values the master keeps, table by table."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.executions import ExecutionStatus as S
from shared.domain.merge import (
    Combine,
    Progress,
    Side,
    further_along,
    merged_custom_fields,
    merged_fields,
    merged_tags,
)

NEW = Progress(S.PENDING, started=False, replied=False, messages_sent=0)
WAITING_1 = Progress(S.WAITING, started=True, replied=False, messages_sent=1)
WAITING_2 = Progress(S.WAITING, started=True, replied=False, messages_sent=2)
REPLIED = Progress(S.WAITING, started=True, replied=True, messages_sent=1)
DONE = Progress(S.COMPLETED, started=True, replied=False, messages_sent=2)
FAILED = Progress(S.FAILED, started=True, replied=False, messages_sent=1)
CANCELLED = Progress(S.CANCELLED, started=False, replied=False, messages_sent=0)
PAUSED_1 = Progress(S.PAUSED, started=True, replied=False, messages_sent=1)
REMOVED_DONE = Progress(S.COMPLETED, started=True, replied=True, messages_sent=3, removed=True)


@pytest.mark.parametrize(
    ("master", "other", "kept"),
    [
        (NEW, NEW, Side.MASTER),  # a tie keeps the master's
        (NEW, WAITING_1, Side.OTHER),  # the one that already messaged goes on
        (WAITING_1, NEW, Side.MASTER),
        (WAITING_1, WAITING_2, Side.OTHER),  # more messages out
        (WAITING_2, REPLIED, Side.OTHER),  # a reply outranks messages
        (DONE, REPLIED, Side.OTHER),  # and a completion
        (DONE, WAITING_2, Side.MASTER),  # completed beats still going
        (FAILED, NEW, Side.OTHER),  # a failed one is behind a live one
        (CANCELLED, FAILED, Side.OTHER),  # both ended badly: the one that messaged more
        (PAUSED_1, NEW, Side.MASTER),  # paused after starting is started
        (REMOVED_DONE, NEW, Side.OTHER),  # a removed execution never wins
        (NEW, REMOVED_DONE, Side.MASTER),
    ],
)
def test_the_execution_further_along_is_kept(master: Progress, other: Progress, kept: Side) -> None:
    assert further_along(master, other) is kept


MASTER = {"first_name": "Ann", "last_name": None, "telegram_username": "ann",
          "phone": None, "telegram_user_id": 7, "company_id": None,
          "time_zone": None}  # fmt: skip
OTHER = {"first_name": "Anna", "last_name": "Lee", "telegram_username": "ann_old",
         "phone": "4915123", "telegram_user_id": None, "company_id": "c1",
         "time_zone": "Asia/Tokyo"}  # fmt: skip


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        # nothing chosen: the master's values, filled from the other where the master has none
        ({}, {"first_name": "Ann", "last_name": "Lee", "telegram_username": "ann",
              "phone": "4915123", "telegram_user_id": 7, "company_id": "c1",
              "time_zone": "Asia/Tokyo"}),
        # the other's name and username chosen
        ({"first_name": Side.OTHER, "telegram_username": Side.OTHER},
         {"first_name": "Anna", "last_name": "Lee", "telegram_username": "ann_old",
          "phone": "4915123", "telegram_user_id": 7, "company_id": "c1",
              "time_zone": "Asia/Tokyo"}),
        # the master's empty value chosen on purpose stays empty
        ({"phone": Side.MASTER, "company_id": Side.MASTER, "time_zone": Side.MASTER},
         {"first_name": "Ann", "last_name": "Lee", "telegram_username": "ann",
          "phone": None, "telegram_user_id": 7, "company_id": None, "time_zone": None}),
        # the other's empty value chosen on purpose clears it
        ({"telegram_user_id": Side.OTHER},
         {"first_name": "Ann", "last_name": "Lee", "telegram_username": "ann",
          "phone": "4915123", "telegram_user_id": None, "company_id": "c1",
          "time_zone": "Asia/Tokyo"}),
    ],
)  # fmt: skip
def test_each_field_keeps_the_chosen_value(
    choices: dict[str, Side], expected: dict[str, Any]
) -> None:
    assert merged_fields(MASTER, OTHER, choices) == expected


@pytest.mark.parametrize(
    ("combine", "tags", "fields"),
    [
        (Combine.UNION, ["a", "b", "c"], {"x": 1, "y": 2, "z": 3}),
        (Combine.MASTER, ["a", "b"], {"x": 1, "y": 2}),
    ],
)
def test_tags_and_custom_fields_union_unless_told(
    combine: Combine, tags: list[str], fields: dict[str, int]
) -> None:
    assert merged_tags(["b", "a"], ["c", "a"], combine) == tags
    # a custom field both have keeps the master's value
    assert merged_custom_fields({"x": 1, "y": 2}, {"y": 9, "z": 3}, combine) == fields
