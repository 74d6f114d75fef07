"""Load shedding (issue 17, item 6): requests beyond the API's places wait briefly, then get a
fast 503 `overloaded` with Retry-After; /health and /metrics are never shed."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services.api.shedding import SHED, LoadShedding

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
