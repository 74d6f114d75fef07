"""Load shedding (issue 17, item 6): requests beyond the API's places wait briefly, then get a
fast 503 `overloaded` with Retry-After; /health and /metrics are never shed."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from dripline.processes import ServiceProcess
from services.api.accounts import create_user_with_key
from services.api.shedding import SHED, LoadShedding
from shared.db.pool import DbConnection, connect
from shared.settings import Settings

PLACES = 2


class Started:
    """The requests the app has begun serving, and a wait for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Condition()

    async def begin(self) -> None:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()

    async def reach(self, n: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.count >= n)


def slow_app(release: asyncio.Event, started: Started) -> Starlette:
    async def work(request: Request) -> PlainTextResponse:
        await started.begin()
        await release.wait()
        return PlainTextResponse("done")

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/work", work), Route("/health", health)])


async def test_requests_beyond_the_places_are_shed_fast_with_retry_after() -> None:
    release, started = asyncio.Event(), Started()
    app = LoadShedding(slow_app(release, started), limit=PLACES, queue_wait_s=0.05)
    shed_before = SHED._value.get()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        served = [asyncio.create_task(client.get("/work")) for _ in range(PLACES)]
        await asyncio.wait_for(started.reach(PLACES), 10)

        turned_away = await asyncio.gather(*(client.get("/work") for _ in range(3)))
        for response in turned_away:
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "overloaded"
        assert started.count == PLACES  # the shed requests never reached the app
        assert SHED._value.get() == shed_before + 3

        # The probes still answer while every place is taken.
        assert (await client.get("/health")).status_code == 200

        release.set()
        assert [r.status_code for r in await asyncio.gather(*served)] == [200] * PLACES
        # The places are free again.
        assert (await client.get("/work")).status_code == 200


async def test_a_request_waiting_for_a_place_is_served_when_one_frees_in_time() -> None:
    release, started = asyncio.Event(), Started()
    app = LoadShedding(slow_app(release, started), limit=1, queue_wait_s=5.0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        first = asyncio.create_task(client.get("/work"))
        await asyncio.wait_for(started.reach(1), 10)
        second = asyncio.create_task(client.get("/work"))
        await asyncio.sleep(0.1)
        assert started.count == 1  # waiting, not shed
        release.set()
        assert (await first).status_code == 200
        assert (await second).status_code == 200


LIVE_PLACES = 3


# The pool opens all its connections at start: a new connection could not start while the test
# holds its lock on contacts (seen: only the open connection reached it, the others hung).
@pytest.mark.settings(
    api_max_concurrent_requests=LIVE_PLACES, api_queue_wait_s=0.2, db_pool_min=5, db_pool_max=5
)
async def test_the_live_api_sheds_requests_beyond_its_places_and_serves_the_rest(
    settings: Settings, database: str
) -> None:
    """The api as deployed (its own process, real PostgreSQL): requests held by a lock on
    `contacts` take every place; more are answered 503 `overloaded` with Retry-After within a
    moment, never queued behind them; the probes still answer; the held requests, exactly as
    many as the places, are all served once the lock goes."""
    connection = await connect(database)
    api_process = ServiceProcess("api", settings)
    try:
        issued = await create_user_with_key(connection, "shed@example.com")
        api_process.start()
        await api_process.wait_healthy()
        headers = {"Authorization": f"Bearer {issued.plaintext}"}
        async with httpx.AsyncClient(base_url=api_process.url, headers=headers, timeout=30) as api:
            created = await api.post("/contacts", json={"telegram_username": "held"})
            assert created.status_code == 201, created.text
            contact = f"/contacts/{created.json()['id']}"
            shed_before = await shed_count(api)

            async with connection.transaction():
                await connection.execute("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
                held = [asyncio.create_task(api.get(contact)) for _ in range(LIVE_PLACES)]
                await waiting_on_the_lock(connection, LIVE_PLACES)

                started = time.perf_counter()
                turned_away = await asyncio.wait_for(
                    asyncio.gather(*(api.get(contact) for _ in range(4))), 10
                )
                took = time.perf_counter() - started
                for response in turned_away:
                    assert response.status_code == 503, response.text
                    assert response.headers["Retry-After"] == "1"
                    assert response.headers["content-type"] == "application/problem+json"
                    assert response.json()["code"] == "overloaded"
                # Turned away after the queue wait (0.2 s), not after the held requests.
                assert took < 3.0, took
                assert not any(task.done() for task in held)  # still held: nothing was freed
                assert (await api.get("/health")).status_code == 200
                assert await shed_count(api) == shed_before + 4
            # The lock is gone: every request that had a place is served, none was shed.
            answers = await asyncio.wait_for(asyncio.gather(*held), 30)
            assert [r.status_code for r in answers] == [200] * LIVE_PLACES
            assert (await api.get(contact)).status_code == 200
            assert await shed_count(api) == shed_before + 4
    finally:
        api_process.stop()
        await connection.close()


async def shed_count(api: httpx.AsyncClient) -> float:
    """dripline_api_requests_shed_total as the api's /metrics shows it."""
    text = (await api.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("dripline_api_requests_shed_total "):
            return float(line.split()[1])
    raise AssertionError("/metrics has no dripline_api_requests_shed_total")


async def waiting_on_the_lock(connection: DbConnection, count: int) -> None:
    """Until `count` other backends wait for a lock (the held requests are in the database)."""
    deadline = time.monotonic() + 20
    while True:
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        if waiting >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"only {waiting} of {count} requests reached the lock")
        await asyncio.sleep(0.05)
