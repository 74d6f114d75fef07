"""The API's routers read the running service through the typed dependencies of
services/api/deps.py, and page through services/api/paging.py's `Keyset`.

A ratchet, read from the source: the modules not converted yet are listed, and no other module
may start reading `app.state.service` or writing its own `limit + 1`. An entry may go once its
module is converted (it is not checked for staleness, so that converting a module in another
branch cannot break this one's merge).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
API = ROOT / "services" / "api"

# Not converted yet (issue 18, item 6), each with where it reads the service.
STATE_READERS = {
    "services/api/deps.py": "the one place that does, for the dependencies",
    "services/api/commands.py": "the clock and command_wait_s, with the request it is handed",
    "services/api/idempotency.py": "a middleware: FastAPI dependencies do not reach it",
    "services/api/telegram_accounts.py": "not converted yet",
    "services/api/account_logins.py": "not converted yet (the settings' key and the clock)",
}
OWN_PAGING = {
    "services/api/paging.py": "the helper itself",
}
_STATE = re.compile(r"app\.state\.service\b")
_PAGING = re.compile(r"\blimit\s*\+\s*1\b")


def _modules_matching(pattern: re.Pattern[str]) -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for path in API.rglob("*.py")
        if pattern.search(path.read_text())
    }


def test_only_listed_modules_read_the_service_from_app_state() -> None:
    assert _modules_matching(_STATE) - set(STATE_READERS) == set()


def test_only_listed_modules_page_by_hand() -> None:
    assert _modules_matching(_PAGING) - set(OWN_PAGING) == set()


def test_the_patterns_find_what_they_look_for() -> None:
    assert _STATE.search("now = request.app.state.service.clock.now()")
    assert _PAGING.search("rows = await fetch(query, limit + 1)")
    assert not _PAGING.search("keyset.fetch")
