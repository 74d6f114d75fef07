"""Session strings at rest, and when a deployment can run Telethon accounts at all."""

from __future__ import annotations

import pytest

from shared.crypto import SessionCipher, SessionKeyError
from shared.settings import Settings


def test_a_sealed_session_opens_only_with_its_key() -> None:
    key = SessionCipher.new_key()
    sealed = SessionCipher(key).seal("1BVtsOKABu...secret")
    assert "secret" not in sealed
    assert SessionCipher(key).open(sealed) == "1BVtsOKABu...secret"
    with pytest.raises(SessionKeyError, match="DRIPLINE_SESSION_KEY"):
        SessionCipher(SessionCipher.new_key()).open(sealed)


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({}, "DRIPLINE_SESSION_KEY, DRIPLINE_TELEGRAM_API_ID, DRIPLINE_TELEGRAM_API_HASH"),
        ({"session_key": "k", "telegram_api_id": 1}, "DRIPLINE_TELEGRAM_API_HASH"),
        ({"session_key": "k", "telegram_api_id": 1, "telegram_api_hash": "h"}, None),
    ],
)
def test_telethon_needs_a_key_and_api_credentials(
    values: dict[str, object], missing: str | None
) -> None:
    settings = Settings(**values)  # type: ignore[arg-type]
    if missing is None:
        assert settings.telethon_ready is None
    else:
        assert settings.telethon_ready == f"not configured: {missing}"
