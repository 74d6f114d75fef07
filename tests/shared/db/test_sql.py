from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.db.sql import CONSTANTS, Queries, in_list
from shared.domain.executions import (
    BETWEEN_STEPS,
    FINISHED,
    IN_MOTION,
    UNFINISHED,
    ExecutionStatus,
)


def test_named_blocks_are_split_with_their_comments(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text("-- name: first\n-- The first one.\nSELECT 1;\n\n-- name: second\nSELECT 2;\n")
    queries = Queries.load(path)
    assert queries["first"] == "-- The first one.\nSELECT 1;"
    assert queries["second"] == "SELECT 2;"
    assert "third" not in queries


def test_a_name_defined_twice_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    with pytest.raises(ValueError, match="defined twice"):
        Queries.load(path)


def test_a_file_without_names_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text("SELECT 1;\n")
    with pytest.raises(ValueError, match="no '-- name:' blocks"):
        Queries.load(path)


def test_a_named_status_set_is_written_as_its_literal_list(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text(
        "-- name: q\nSELECT 1 FROM executions\n"
        "WHERE status IN {{EXECUTIONS_UNFINISHED}} OR status IN {{EXECUTIONS_BETWEEN_STEPS}};\n"
    )
    assert Queries.load(path)["q"] == (
        "SELECT 1 FROM executions\n"
        "WHERE status IN ('pending', 'running', 'waiting', 'paused')"
        " OR status IN ('pending', 'waiting');"
    )


def test_an_unknown_set_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text("-- name: q\nSELECT 1 WHERE 'x' IN {{EXECUTIONS_UNFINSHED}};\n")
    with pytest.raises(ValueError, match=r"'q' names an unknown set \{\{EXECUTIONS_UNFINSHED\}\}"):
        Queries.load(path)


@pytest.mark.parametrize(
    ("name", "literal"),
    [
        ("EXECUTIONS_UNFINISHED", "('pending', 'running', 'waiting', 'paused')"),
        ("EXECUTIONS_IN_MOTION", "('pending', 'running', 'waiting')"),
        ("EXECUTIONS_BETWEEN_STEPS", "('pending', 'waiting')"),
        ("EXECUTIONS_FINISHED", "('completed', 'failed', 'cancelled')"),
    ],
)
def test_each_set_is_the_literal_the_queries_wrote_before(name: str, literal: str) -> None:
    assert CONSTANTS[name] == literal


# The status lists the migrated schema still writes out (an index predicate or a function body
# cannot name a set): each must be the domain's set, so a status added to or moved between sets
# in shared/domain/executions.py fails here until a migration follows it.
INDEXED = [
    ("executions_due_idx", BETWEEN_STEPS),
    ("executions_unfinished_idx", UNFINISHED),
    # cancelled rows are left out on purpose (0025): a stop writes fewer index entries
    ("executions_finished_idx", FINISHED - {ExecutionStatus.CANCELLED}),
]


def _quoted(definition: str) -> set[str]:
    return set(re.findall(r"'(\w+)'", definition))


@pytest.mark.parametrize(("index", "statuses"), INDEXED)
async def test_an_executions_partial_index_covers_the_domains_set(
    pool: asyncpg.Pool[Any], index: str, statuses: frozenset[ExecutionStatus]
) -> None:
    definition = await pool.fetchval("SELECT pg_get_indexdef($1::regclass)", index)
    assert _quoted(definition) == {s.value for s in statuses}, definition


async def test_the_executions_status_check_is_the_domains_statuses(
    pool: asyncpg.Pool[Any],
) -> None:
    check = await pool.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'executions'::regclass AND contype = 'c'"
        " AND pg_get_constraintdef(oid) LIKE '%status%'"
    )
    assert _quoted(check) == {s.value for s in ExecutionStatus}, check


async def test_the_statistics_active_contacts_are_the_executions_in_motion(
    pool: asyncpg.Pool[Any],
) -> None:
    body = await pool.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'figure_sums'")
    assert f"s.status IN {in_list(IN_MOTION)}" in body
