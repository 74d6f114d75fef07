from __future__ import annotations

from pathlib import Path

import pytest

from shared.db.sql import Queries


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
