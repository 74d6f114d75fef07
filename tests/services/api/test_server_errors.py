"""A 500 is a problem+json answer on a connection that stays open (issue 13, item 5). The API
runs in this process so that a test-only route can raise."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from services.api.app import create_app
from shared.settings import Settings
from tests.services.builders import serving


def local_address(response: httpx.Response) -> Any:
    """The client's end of the connection the response came on; None once the server closed
    it (the socket can no longer say)."""
    try:
        return response.extensions["network_stream"].get_extra_info("client_addr")
    except OSError:
        return None


async def test_a_500_is_a_problem_and_keeps_the_connection_alive(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("boom for the test")

    async with (
        serving(app, settings.api_port) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        with caplog.at_level(logging.ERROR):
            failed = await client.get("/test-only/boom")
            first = local_address(failed)
        assert failed.status_code == 500, failed.text
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.json()["code"] == "internal_error"
        assert "boom for the test" not in failed.text  # no internals leak to the client
        assert "connection" not in failed.headers or failed.headers["connection"] != "close"
        # The exception is not swallowed: it is logged with its traceback.
        assert any(r.exc_info and "boom for the test" in str(r.exc_info[1]) for r in caplog.records)
        after = await client.get("/health/live")
        assert after.status_code == 200
        assert first is not None, "the server closed the connection after the 500"
        assert local_address(after) == first, "the second request needed a new connection"
