"""Every named query has one owner, is used, prepares, and writes only tables its service owns.

The owner of a .sql file is the module that loads it (`NAME = Queries.load(...)` at module level);
a module runs only queries it loaded itself. A file loaded by two modules is listed in `SHARED`
with its reason. Which service writes which table is `OWNERS` below, the table in
docs/architecture.md ("Processes") written as data; the writes that break it are `EXCEPTIONS`,
each with its reason.

Limits, by design of a check that reads text rather than running the code:
- "Used" means the query's name is a string literal (the whole literal) in a module that loads
  the file: a look-up through a tuple of names or a `Literal` type counts; a name only built at
  run time (f"lock_{x}") would not, and no module does that.
- Write targets are found by a regular expression over the SQL with comments removed:
  `INSERT INTO t`, `UPDATE t`, `DELETE FROM t` anywhere in a block, so data-modifying CTEs count;
  `FOR [NO KEY] UPDATE` and `DO UPDATE` are not writes of their own. It does not see writes
  made inside PL/pgSQL functions (the statistics' `refresh` and friends, defined in
  migrations), nor which columns an UPDATE sets: the exceptions say which columns they mean.
- SQL written inline in Python is not in a named block; `INLINE_SQL` lists the modules that have
  any (found by their string literals), so a new one has to be added here, with a reason.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest

from shared.db.pool import connect
from shared.db.sql import Queries

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("services", "shared", "dripline")

# Files two modules load, and why they are not two copies.
SHARED: dict[str, tuple[set[str], str]] = {
    "services/scheduler/enrolment.sql": (
        {"services.scheduler.lifecycle", "services.scheduler.bulk_actions"},
        "the add_contacts command and the add-to-campaign bulk action enrol contacts alike",
    ),
    "services/api/accounts.sql": (
        {"services.api.accounts", "services.api.api_keys", "services.api.organizations"},
        "a key is issued and a user created (also by invitation) in one way",
    ),
    "services/api/auth.sql": (
        {"services.api.auth", "services.api.idempotency"},
        "idempotency keys belong to the user, found before the endpoint's own authentication",
    ),
    "services/api/telegram_accounts.sql": (
        {"services.api.telegram_accounts", "services.api.bulk_actions.parameters"},
        "a bulk action's sending account must be one the caller sees, as the accounts API says",
    ),
}

# Who writes each table: docs/architecture.md, "Processes". "shared" is the messaging code every
# service runs (outbox, inbox, relay lease).
OWNERS: dict[str, set[str]] = {
    "users": {"api"},
    "api_keys": {"api"},
    "organizations": {"api"},
    "memberships": {"api"},
    "idempotency_keys": {"api"},
    "rate_limits": {"api"},
    "contacts": {"api"},
    "companies": {"api"},
    "pipelines": {"api"},
    "pipeline_stages": {"api"},
    # one at a time; the upsert_opportunities batches; a flow's set_opportunity_stage node
    "opportunities": {"api", "scheduler", "sender"},
    "do_not_contact": {"api"},  # the list, and the consumer of dripline.contact.commands
    "attachments": {"api"},  # uploaded once (POST /attachments); the sender only reads them
    "campaigns": {"api", "scheduler"},  # definitions; status, enabled, deleted_at and copies
    # definitions; health, pacing and quota; a login or an import creates one in the sender
    "telegram_accounts": {"api", "sender"},
    "telegram_logins": {"sender"},  # pending phone logins
    "executions": {"scheduler", "sender"},  # lifecycle; progress
    "messages": {"sender"},
    "execution_logs": {"sender"},
    "simulator_messages": {"sender"},
    "telegram_peers": {"sender"},
    "telegram_updates": {"sender"},
    # The inbox (docs/inbox.md): kept with each send and reply; read, taken over, released.
    "conversations": {"api", "sender"},
    # The fleet circuit breaker (docs/accounts.md): evaluated on health events and by the sweep.
    "fleet_breakers": {"scheduler"},
    "bulk_operations": {"scheduler"},
    "bulk_operation_items": {"scheduler"},
    # Scheduled work's row (docs/architecture.md, "Request and reply"): its schedule (created,
    # edited, paused, resumed, cancelled); its batches and progress.
    "bulk_actions": {"api", "scheduler"},
    "bulk_action_items": {"scheduler"},
    "exports": {"scheduler"},
    "export_chunks": {"scheduler"},
    # Imports (issue 19, item 4): the API streams the upload in, one row per record (and skips
    # the pending ones when the action is cancelled, as bulk_action_items); the scheduler
    # records each row's outcome.
    "contact_imports": {"api"},
    "contact_import_rows": {"api", "scheduler"},
    "campaign_stats": {"stats"},
    "campaign_variant_stats": {"stats"},
    "execution_figures": {"stats"},
    "stats_progress": {"stats"},
    "stats_reconciliation": {"stats"},
    "campaign_activities": {"stats"},
    "outbox": {"shared"},
    "outbox_acked": {"shared"},
    "outbox_relay": {"shared"},
    "inbox": {"shared"},
}

# Writes outside OWNERS, by (file, table), each a narrow write kept on purpose, with its reason.
# Every entry must still match a write, so a stale one fails.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("services/api/bulk_actions/routes.sql", "bulk_action_items"): (
        "cancelling a bulk action skips its pending items in the same transaction"
    ),
    ("services/api/bulk_actions/routes.sql", "campaigns"): (
        "a send-message bulk action's carrier campaign is created with the action"
    ),
    ("services/api/contacts.sql", "executions"): (
        "deleting a contact removes it from its campaigns in the deletion's transaction (issue"
        " 15): deleted_at, and cancelled with contact_deleted while unfinished; a command to the"
        " scheduler would leave it live in them until applied"
    ),
    ("services/api/conversations.sql", "executions"): (
        "taking a conversation over holds its execution (taken_over_at, lease_until) in the"
        " transaction that records the person's answer, and releasing it clears taken_over_at;"
        " never the status or the flow"
    ),
    ("services/api/conversations.sql", "messages"): (
        "a person's answer in the inbox is recorded queued (no execution) with the take-over,"
        " for the sender's conversation.send to send and mark sent or failed"
    ),
    ("services/api/telegram_accounts.sql", "executions"): (
        "deleting an account holds its executions in the deletion's transaction (issue 15):"
        " error_message account_deleted and lease_until only, never the status"
    ),
    ("services/scheduler/bulk_actions.sql", "contacts"): (
        "the add/remove-tags, delete/undelete-contacts, add-to/remove-from-company and"
        " merge-contacts bulk actions change contacts in batches"
    ),
    # A merge (issue 19, item 1) moves the other contact's whole history to the master in one
    # transaction, with the executions it decides between, so nobody is messaged twice.
    ("services/scheduler/bulk_actions.sql", "messages"): (
        "a merge moves the other contact's messages (contact_id; execution_id where two"
        " executions swap their progress) to the master"
    ),
    ("services/scheduler/bulk_actions.sql", "conversations"): (
        "a merge moves the other contact's inbox conversations to the master (joining two with"
        " the same account), and their execution follows a swap of progress, as messages do"
    ),
    ("services/scheduler/bulk_actions.sql", "execution_logs"): (
        "a merge moves the other contact's log entries to the master, as its messages"
    ),
    ("services/scheduler/bulk_actions.sql", "do_not_contact"): (
        "a merge points the other contact's do-not-contact entries at the master and lists the"
        " master by contact where the other was, so the merge unblocks nobody"
    ),
    ("services/scheduler/bulk_actions.sql", "telegram_peers"): (
        "a merge keeps the other contact's resolved peers for the master where it has none"
    ),
    ("services/scheduler/imports.sql", "contacts"): (
        "an import_contacts bulk action creates and updates contacts in batches, as the"
        " scheduler's other contact bulk actions change them"
    ),
    ("services/sender/updates.sql", "do_not_contact"): (
        "an opt-out reply lists the person in the transaction that records the reply (issue 15),"
        " so no step can message them between the reply and a command's arrival"
    ),
    ("services/sender/writer.sql", "contacts"): (
        "a flow's tag node sets contacts.tags (only that column) in the step's transaction"
    ),
}

# Modules with SQL in Python string literals, and why it is not a named block.
INLINE_SQL: dict[str, str] = {
    "shared/db/migrate.py": "the migrator's own bookkeeping table, created before any migration",
    "shared/runtime.py": "the readiness probe, SELECT 1",
    "dripline/infra.py": "the launcher's server set-up (role password, database) through psql",
    "services/sender/login.py": "reads an uploaded Telethon .session file (SQLite), not ours",
}

# Blocks that are completed in Python before they run: what each placeholder is filled with here.
PLACEHOLDERS = {"where": "TRUE", "order": "1", "limit": "1", "pattern": "$1"}
# Blocks that are a fragment of a statement, and the statement they are prepared inside.
FRAGMENTS: dict[tuple[str, str], str] = {
    ("services/api/logs.sql", "search"): "SELECT FROM execution_logs l WHERE {}",
}
# The launcher's demo seed runs before any service and belongs to none: only (a) and (b) apply.
NOT_A_SERVICE = {"dripline/demo.sql"}
# Files loaded inside a function (the launcher imports its queries lazily, like the rest of what
# only `dripline run` needs), found by their file name in the module's source.
LOADED_IN_A_FUNCTION = {"dripline/demo.sql": "dripline.supervisor"}

_WRITE = re.compile(
    r"(?<!\w)(?:(?P<not_a_write>FOR|DO|KEY)\s+)?"
    r"(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:ONLY\s+)?(?P<table>[a-z_][a-z0-9_]*)",
    re.IGNORECASE,
)
_STATEMENT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP)\s+\S")


def _sql_files() -> list[str]:
    found = [p for package in PACKAGES for p in (ROOT / package).rglob("*.sql")]
    return sorted(
        str(p.relative_to(ROOT))
        for p in found
        if "migrations" not in p.parts and p.name != "schema.sql" and ".venv" not in p.parts
    )


def _modules() -> list[ModuleType]:
    modules = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        modules.append(root)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            modules.append(importlib.import_module(info.name))
    return modules


def _source(module: ModuleType) -> tuple[str, ast.Module]:
    assert module.__file__ is not None
    path = Path(module.__file__)
    return str(path.relative_to(ROOT)), ast.parse(path.read_text())


def _loaded_here(tree: ast.Module) -> set[str]:
    """Module-level names bound to `Queries.load(...)` in this module's own source."""
    names = set()
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "Queries.load"
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _literals(tree: ast.Module) -> set[str]:
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def loaders() -> dict[str, dict[str, Queries]]:
    """Each .sql file → the modules that load it → what they loaded. Fails on a borrowed one."""
    found: dict[str, dict[str, Queries]] = defaultdict(dict)
    borrowed = []
    for module in _modules():
        _, tree = _source(module)
        own = _loaded_here(tree)
        for name, value in vars(module).items():
            if not isinstance(value, Queries):
                continue
            if name not in own:
                borrowed.append(f"{module.__name__}.{name}")
                continue
            assert value.path is not None
            found[str(value.path.resolve().relative_to(ROOT))][module.__name__] = value
    for path, name in LOADED_IN_A_FUNCTION.items():
        module = importlib.import_module(name)
        assert f'with_name("{Path(path).name}")' in Path(module.__file__ or "").read_text()
        found[path][name] = Queries.load(ROOT / path)
    assert borrowed == [], "modules running another module's queries (load the file instead)"
    return found


def test_every_sql_file_has_one_owner_or_is_listed_as_shared() -> None:
    found = loaders()
    assert sorted(found) == _sql_files(), "a .sql file nobody loads, or one outside the packages"
    shared = {path: set(modules) for path, modules in found.items() if len(modules) > 1}
    assert shared == {path: modules for path, (modules, _) in SHARED.items()}


def test_every_named_query_is_used_by_a_module_that_loads_it() -> None:
    unused = []
    for path, modules in loaders().items():
        used: set[str] = set()
        for name in modules:
            used |= _literals(_source(importlib.import_module(name))[1])
        queries = next(iter(modules.values()))
        unused += [f"{path}: {name}" for name in queries.names if name not in used]
    assert unused == []


def _statements() -> list[tuple[str, str, str]]:
    """(file, name, statement) for every block, placeholders and fragments completed."""
    statements = []
    for path in _sql_files():
        queries = Queries.load(ROOT / path)
        for name in queries.names:
            sql = queries[name]
            if (path, name) in FRAGMENTS:
                sql = FRAGMENTS[path, name].format(sql)
            sql = sql.replace("{page}", f"({queries['page']})" if "page" in queries else "{page}")
            for placeholder, value in PLACEHOLDERS.items():
                sql = sql.replace("{" + placeholder + "}", value)
            statements.append((path, name, sql))
    return statements


async def test_every_named_query_prepares_against_the_migrated_schema(database: str) -> None:
    """PREPARE parses, resolves every table, column, function and parameter type, and runs
    nothing: a misspelt column fails here rather than in the request that first runs it."""
    connection = await connect(database)
    failures = []
    try:
        for path, name, sql in _statements():
            try:
                await connection.prepare(sql)
            except asyncpg.PostgresError as error:
                failures.append(f"{path}: {name}: {type(error).__name__}: {error}")
    finally:
        await connection.close()
    assert failures == []


def test_claims_that_skip_locked_rows_do_not_skip_rows_merely_referenced() -> None:
    """A row another transaction only references (an INSERT whose foreign key points at it)
    holds KEY SHARE on it; FOR UPDATE conflicts with that and SKIP LOCKED would pass the row
    over (the health check skipped an account while its own update was being recorded), while
    FOR NO KEY UPDATE does not, and still excludes every other claimer."""
    plain = [
        (path, name)
        for path, name, sql in _statements()
        if "SKIP LOCKED" in sql and re.search(r"FOR\s+UPDATE\b", sql)
    ]
    assert plain == []


def _service(path: str) -> str:
    parts = Path(path).parts
    return parts[1] if parts[0] == "services" else parts[0]


def writes() -> dict[tuple[str, str], str]:
    """(file, table) → the first query of that file that writes the table."""
    found: dict[tuple[str, str], str] = {}
    for path in _sql_files():
        queries = Queries.load(ROOT / path)
        for name in queries.names:
            text = re.sub(r"--[^\n]*", "", queries[name])
            for match in _WRITE.finditer(text):
                if match.group("not_a_write") is None:
                    found.setdefault((path, match.group("table").lower()), name)
    return found


def test_each_table_is_written_only_by_its_owners() -> None:
    found = {key: name for key, name in writes().items() if key[0] not in NOT_A_SERVICE}
    unknown = sorted({table for _, table in found} - set(OWNERS))
    assert unknown == [], "tables written that the ownership map does not name"
    trespass = sorted(
        f"{path} ({name}) writes {table}"
        for (path, table), name in found.items()
        if _service(path) not in OWNERS[table] and (path, table) not in EXCEPTIONS
    )
    assert trespass == []
    stale = sorted(str(key) for key in EXCEPTIONS if key not in found)
    assert stale == [], "exceptions that no longer match a write: delete them"


def test_write_targets_are_found_inside_ctes_and_not_in_row_locks() -> None:
    sql = (
        "WITH gone AS (DELETE FROM a RETURNING id), moved AS (UPDATE ONLY b SET x = 1)\n"
        "INSERT INTO c SELECT id FROM gone ON CONFLICT (id) DO UPDATE SET x = 2;\n"
        "SELECT * FROM d FOR UPDATE; SELECT * FROM e FOR NO KEY UPDATE OF e; -- UPDATE f"
    )
    text = re.sub(r"--[^\n]*", "", sql)
    targets = {m.group("table") for m in _WRITE.finditer(text) if not m.group("not_a_write")}
    assert targets == {"a", "b", "c"}


def test_sql_in_python_literals_is_only_where_listed() -> None:
    found = set()
    for module in _modules():
        path, tree = _source(module)
        parts = [n.values for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)]
        formatted = {id(v) for values in parts for v in values}
        for node in ast.walk(tree):
            text = None
            if isinstance(node, ast.JoinedStr):
                text = "".join(
                    str(v.value) if isinstance(v, ast.Constant) else "?" for v in node.values
                )
            elif isinstance(node, ast.Constant) and id(node) not in formatted:
                text = node.value if isinstance(node.value, str) else None
            if text is not None and _STATEMENT.match(text):
                found.add(path)
    assert found == set(INLINE_SQL)


@pytest.mark.parametrize("path", sorted(SHARED))
def test_a_shared_file_says_it_is_shared(path: str) -> None:
    assert "Shared by" in (ROOT / path).read_text().split("-- name:")[0]


def test_every_literal_look_up_names_a_query_of_the_file_it_reads() -> None:
    """`QUERIES["name"]` with a name its file does not hold fails only when that line runs."""
    missing = []
    for module in _modules():
        path, tree = _source(module)
        held = {k: v for k, v in vars(module).items() if isinstance(v, Queries)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id in held
                and isinstance(node.slice, ast.Constant)
                and node.slice.value not in held[node.value.id]
            ):
                missing.append(f"{path}:{node.lineno} {node.value.id}[{node.slice.value!r}]")
    assert missing == []


_READS_OUTBOX = re.compile(r"\b(FROM|JOIN)\s+outbox\b(?!_)", re.IGNORECASE)
_CACHED_CALLS = {"fetch", "fetchrow", "fetchval", "execute", "executemany"}


def test_queries_that_read_the_outbox_are_planned_at_each_call() -> None:
    """A plan asyncpg cached while the outbox was nearly empty reads the whole table once it
    has grown (shared.db.pool.fetch_replanned says why): every query that reads the outbox is
    run through fetch_replanned or execute_replanned, never a connection's cached methods."""
    reading = {
        (path, name)
        for path, name, sql in _statements()
        if _READS_OUTBOX.search(re.sub(r"--[^\n]*", "", sql))
    }
    assert ("shared/messaging/outbox.sql", "fetch_unsent") in reading  # the check sees them
    cached = []
    for module in _modules():
        path, tree = _source(module)
        held = {
            name: str(value.path.resolve().relative_to(ROOT))
            for name, value in vars(module).items()
            if isinstance(value, Queries) and value.path is not None
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in _CACHED_CALLS or not node.args:
                continue
            query = node.args[0]
            if (
                isinstance(query, ast.Subscript)
                and isinstance(query.value, ast.Name)
                and query.value.id in held
                and isinstance(query.slice, ast.Constant)
                and isinstance(query.slice.value, str)
                and (held[query.value.id], query.slice.value) in reading
            ):
                cached.append(f"{path}:{node.lineno} {query.slice.value}")
    assert cached == []
