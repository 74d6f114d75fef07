from __future__ import annotations

from pathlib import Path

import pytest

from shared.db.sql import CONSTANTS, Queries


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
