"""Load shedding: at most `limit` requests in progress; one more waits for a place up to
`queue_wait_s` and is then answered 503 `overloaded` with Retry-After, at once.

Without it, every request beyond what the API can serve queues inside the process (the event
loop, the database pool) and all of them get slow together: an independent probe measured p99
14.7 s at 300 clients. Shedding keeps the answers that are given fast, and tells the callers
beyond capacity when to come back. The probes of operators and orchestrators (`/health`,
`/metrics`) are never shed: an overloaded API must still say it is alive.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.problems import Problem

NEVER_SHED = frozenset({"/health", "/metrics"})

SHED = Counter("dripline_api_requests_shed_total", "Requests answered 503 overloaded, unserved")
IN_PROGRESS = Gauge("dripline_api_requests_in_progress", "Requests the API is serving now")


def overloaded(retry_after_s: int) -> Problem:
    problem = Problem(
        503, "overloaded", "Overloaded",
        "the API is serving as many requests as it can; retry after the time given",
        retry_after_s=retry_after_s,
    )  # fmt: skip
    problem.headers["Retry-After"] = str(retry_after_s)
    return problem


class LoadShedding:
    def __init__(self, app: ASGIApp, *, limit: int, queue_wait_s: float) -> None:
        self.app = app
        self.queue_wait_s = queue_wait_s
        self._places = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self._places.acquire(), self.queue_wait_s)
        except TimeoutError:
            SHED.inc()
            problem = overloaded(retry_after_s=1)
            await problem.response(problem.headers)(scope, receive, send)
            return
        IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            IN_PROGRESS.dec()
            self._places.release()
