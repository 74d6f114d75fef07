"""Migrations: the migrated schema equals the canonical one, and concurrent runs are safe."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.db import migrate as migrate_module
from shared.db.migrate import CANONICAL_SCHEMA, MigrationError, load_migrations, migrate
from shared.db.pool import connect

# A portable description of a schema, read from the catalog (no pg_dump version coupling).
SNAPSHOT = {
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default,
               is_identity
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
        ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
          AND conrelid::regclass::text <> 'schema_migrations'
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1, 2""",
    "functions": """
        SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal ORDER BY 1, 2""",
    "table_options": """
        SELECT relname, coalesce(reloptions, '{}') FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
          AND relname <> 'schema_migrations' ORDER BY 1""",
}


async def snapshot(connection: asyncpg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: [tuple(row) for row in await connection.fetch(query)]
        for name, query in SNAPSHOT.items()
    }


async def test_migrated_schema_equals_the_canonical_schema(
    database: str, empty_database: str
) -> None:
    canonical = await connect(empty_database)
    migrated = await connect(database)  # the template was built by running the migrations
    try:
        await canonical.execute(CANONICAL_SCHEMA.read_text())
        expected, actual = await snapshot(canonical), await snapshot(migrated)
    finally:
        await canonical.close()
        await migrated.close()
    for part in SNAPSHOT:
        assert actual[part] == expected[part], f"{part} differ between migrations and schema.sql"
    assert len(actual["columns"]) > 100  # the whole model, not an empty database twice


async def test_concurrent_migrations_apply_each_file_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(5)))
    applied = sorted(len(r) for r in results)
    assert applied == [0, 0, 0, 0, len(load_migrations())]
    connection = await connect(empty_database)
    try:
        versions = await connection.fetch("SELECT version FROM schema_migrations ORDER BY 1")
    finally:
        await connection.close()
    assert [r["version"] for r in versions] == [m.version for m in load_migrations()]


async def test_a_changed_applied_migration_is_refused(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate(empty_database)
    edited = tmp_path / "migrations"
    edited.mkdir()
    for migration in load_migrations():
        path = edited / f"{migration.version:04d}_{migration.name}.sql"
        path.write_text(migration.sql + "\n-- edited afterwards\n")
    original = migrate_module.load_migrations
    monkeypatch.setattr(migrate_module, "load_migrations", lambda: original(edited))
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await migrate(empty_database)


def test_migration_files_are_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="without gaps"):
        load_migrations(tmp_path)
