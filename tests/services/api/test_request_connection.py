"""The hot reads and the contact create borrow one pooled connection per request, for the
authentication and the endpoint both (issue 17, item 6: a second borrowing costs a reset round
trip when it goes back). The API runs in this process, so the borrowings can be counted on the
real pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dripline.admin import create_user
from services.api.app import create_app
from shared.db.pool import connect
from shared.settings import Settings
from tests.services.builders import serving


class CountingPool:
    """The service's pool, counting `acquire` calls; everything else passes through."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.acquired = 0

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.acquired += 1
        return self.pool.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


REQUESTS: list[tuple[str, Callable[[dict[str, Any]], tuple[str, str, Any]]]] = [
    ("list contacts", lambda ids: ("GET", "/contacts?limit=50", None)),
    ("read a contact", lambda ids: ("GET", f"/contacts/{ids['contact']}", None)),
    ("create a contact", lambda ids: ("POST", "/contacts", {"telegram_username": "one_more"})),
    ("statistics", lambda ids: ("GET", f"/campaign-flows/{ids['campaign']}/statistics", None)),
]


@pytest.mark.parametrize(("what", "request_of"), REQUESTS, ids=[r[0] for r in REQUESTS])
async def test_a_hot_request_borrows_one_connection(
    settings: Settings, what: str, request_of: Callable[[dict[str, Any]], tuple[str, str, Any]]
) -> None:
    connection = await connect(settings.dsn)
    try:
        issued = await create_user(connection, "hot@example.com")
        ids = dict(
            contact=await connection.fetchval(
                "INSERT INTO contacts (owner_user_id, telegram_username) VALUES ($1, 'hot')"
                " RETURNING id",
                issued.user_id,
            ),
            campaign=await connection.fetchval(
                "INSERT INTO campaigns (created_by, name, status) VALUES ($1, 'hot', 'draft')"
                " RETURNING id",
                issued.user_id,
            ),
        )
    finally:
        await connection.close()
    app = create_app(settings)
    async with (
        serving(app, settings.api_port) as url,
        httpx.AsyncClient(
            base_url=url, timeout=10, headers={"Authorization": f"Bearer {issued.plaintext}"}
        ) as client,
    ):
        service = app.state.service
        counting = CountingPool(service._pool)
        service._pool = counting
        try:
            method, path, body = request_of(ids)
            response = await client.request(method, path, json=body)
        finally:
            service._pool = counting.pool
    assert response.status_code in (200, 201), response.text
    assert counting.acquired == 1, what
