"""The shell every service runs in: a FastAPI app whose lifespan owns the database pool, the
Kafka subscriber (one for all its topics) and the outbox relay, with /health and /metrics.

Start order: pool, topics, relay producer, relay, subscribers. Stop order (graceful): stop the
subscribers (the in-flight batch finishes and its offsets are committed), then drain the
outbox, then close the producer and the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db.pool import create_pool
from shared.domain.clock import Clock, SystemClock
from shared.file_clock import FileClock
from shared.messaging.consumer import BatchConsumer, Handler
from shared.messaging.contracts import Contract, Payload
from shared.messaging.kafka import ensure_topics, make_broker, relay_producer, subscribe
from shared.messaging.outbox import OutboxRelay
from shared.messaging.topics import Topic
from shared.settings import Settings

log = logging.getLogger(__name__)

# Not `job` and `service`: Prometheus attaches those to every series as target labels (the
# scrape job, and the service in deploy/prometheus/), and would rename ours out of the way.
JOB_FAILURES = Counter(
    "dripline_periodic_job_failures_total", "Periodic job runs that raised", ["periodic_job"]
)
Job = Callable[["Service"], Awaitable[object]]
HTTP_SECONDS = Histogram(
    "dripline_http_request_duration_seconds",
    "HTTP requests by route template (never the raw path), method and status class",
    ["method", "route", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Anything else a client sends is one label value, so a scanner cannot grow the series.
P = TypeVar("P", bound=Payload)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class Service:
    """A service's wiring: its name, its settings and clock, and what it consumes."""

    name: str
    settings: Settings
    description: str
    clock: Clock = field(default_factory=SystemClock)
    handlers: dict[Topic, dict[str, Handler[Any]]] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    # A job's own pause between runs, where it is not settings.sweep_interval_s.
    intervals: dict[str, float] = field(default_factory=dict)
    # Run when the service stops, after its jobs and before its pool closes.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Set by wake(name): the job's pause ends now instead of after its interval.
    _wakes: dict[str, asyncio.Event] = field(init=False, default_factory=dict)
    broker: KafkaBroker = field(init=False)
    _pool: asyncpg.Pool[Any] | None = field(init=False, default=None)
    _relay: OutboxRelay | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.broker = make_broker(self.settings, description=self.description)
        if self.settings.clock_file is not None:
            self.clock = FileClock(self.settings.clock_file)

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            raise RuntimeError(f"{self.name} has not started")
        return self._pool

    def handle(self, contract: Contract[P]) -> Callable[[Handler[P]], Handler[P]]:
        """Consume `contract`'s messages with the handler: mypy refuses a handler that does not
        take the contract's payload type. (Handlers are keyed by message type: when a type gets a
        second version, its one handler must take both versions' payloads.)"""

        def register(handler: Handler[P]) -> Handler[P]:
            handlers = self.handlers.setdefault(contract.topic, {})
            known = handlers.get(contract.type.value)
            if known is not None and known != handler:
                raise ValueError(f"{self.name} already handles {contract.type.value}")
            handlers[contract.type.value] = handler
            return handler

        return register

    def every_sweep(self, name: str, *, interval_s: float | None = None) -> Callable[[Job], Job]:
        """Run `job(service)` every settings.sweep_interval_s (or every `interval_s`) while the
        service runs; the pause is between the end of one run and the start of the next."""

        def register(job: Job) -> Job:
            self.jobs[name] = job
            if interval_s is not None:
                self.intervals[name] = interval_s
            return job

        return register

    def wake(self, name: str) -> None:
        """Run the periodic job `name` now: the pause after its current (or last) run ends at
        once. Work that a handler committed for a job (a bulk operation's batches) starts then,
        not up to an interval later."""
        self._wakes.setdefault(name, asyncio.Event()).set()

    async def _pause(self, name: str) -> None:
        woken = self._wakes.setdefault(name, asyncio.Event())
        interval = self.intervals.get(name, self.settings.sweep_interval_s)
        with contextlib.suppress(TimeoutError):  # the interval ended: the usual next run
            await asyncio.wait_for(woken.wait(), timeout=interval)
        woken.clear()

    async def _repeat(self, name: str, job: Job) -> None:
        JOB_FAILURES.labels(name)  # from zero, so the first failure shows in rate()
        while True:
            try:
                await job(self)
            except Exception:
                # One failed run must not end the loop; the next run retries. It is logged
                # with its traceback and counted, never silently dropped.
                JOB_FAILURES.labels(name).inc()
                log.exception("%s: periodic job %s failed", self.name, name)
            await self._pause(name)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        settings = self.settings
        self._pool = await create_pool(
            settings.dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        producer = relay_producer(settings)
        relay_task: asyncio.Task[None] | None = None
        job_tasks: list[asyncio.Task[None]] = []
        try:
            if settings.create_topics:
                await ensure_topics(settings.bootstrap_servers, settings.topic_prefix)
            await producer.start()
            self._relay = OutboxRelay(
                self._pool,
                producer,
                bootstrap_servers=settings.bootstrap_servers,
                topic_prefix=settings.topic_prefix,
                poll_interval_s=settings.outbox_poll_interval_s,
                lease_s=settings.relay_lease_s,
                loss_check_s=settings.relay_loss_check_s,
                create_topics=settings.create_topics,
                holder=self.name,
                outbox_retention_s=settings.outbox_retention_s,
                inbox_retention_s=settings.inbox_retention_s,
            )
            relay_task = asyncio.create_task(self._relay.run(), name=f"{self.name}-outbox-relay")
            # One subscriber (one member of the service's group) for all its topics.
            pool = self._pool
            consumers = [
                BatchConsumer(name=self.name, topic=t, handlers=h, pool=pool, clock=self.clock)
                for t, h in self.handlers.items()
            ]
            subscribe(self.broker, settings, consumers)
            await self.broker.start()
            job_tasks = [asyncio.create_task(self._repeat(name, job), name=f"{self.name}-{name}")
                         for name, job in self.jobs.items()]  # fmt: skip
            log.info("%s started", self.name)
            yield
        finally:
            log.info("%s stopping", self.name)
            for task in job_tasks:
                task.cancel()
            await asyncio.gather(*job_tasks, return_exceptions=True)
            for close in self.closers:
                await close()
            await self.broker.stop()
            if relay_task is not None:
                relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay_task
            if self._relay is not None:
                await self._relay.drain()
            await producer.stop()
            await self._pool.close()
            self._pool = None
            log.info("%s stopped", self.name)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(2):
                await self.pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failing: {type(exc).__name__}: {exc}"
        try:
            ok = await self.broker.ping(timeout=2.0)
            checks["broker"] = "ok" if ok else "failing: no answer"
        except Exception as exc:
            checks["broker"] = f"failing: {type(exc).__name__}: {exc}"
        return checks


def build_app(service: Service, **fastapi_options: Any) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with service.running():
            yield

    app = FastAPI(lifespan=lifespan, **fastapi_options)
    app.state.service = service
    app.add_middleware(HttpMetrics)

    @app.get("/health", tags=["operations"], summary="Readiness: the database and the broker")
    async def health() -> JSONResponse:
        checks = await service.readiness()
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "service": service.name, "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/health/live", tags=["operations"], summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": service.name}

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus exposition",
        responses={200: {"content": {"text/plain": {}}}},  # declared, as clients see it
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


class HttpMetrics:
    """Times every HTTP request into dripline_http_request_duration_seconds, labelled with the
    route template the router matched (`/campaign-flows/{campaign_id}`), or "unmatched": raw
    paths carry ids and would make the series unbounded.

    Plain ASGI rather than BaseHTTPMiddleware, so streamed responses (exports) pass through
    untouched; the time is taken when the response has been sent in full."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            HTTP_SECONDS.labels(method, route_template(scope), f"{status // 100}xx").observe(
                time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    """The path template of the route that handled the request (the router records it in the
    scope), or "unmatched" (a 404 for a path no route knows)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else "unmatched"
