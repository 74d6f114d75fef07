"""The API's named SQL (queries.sql beside this module), loaded once."""

from __future__ import annotations

from pathlib import Path

from shared.db.sql import Queries

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))
