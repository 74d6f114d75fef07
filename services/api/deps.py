"""Typed FastAPI dependencies for what every router needs from the running service.

The service shell keeps its `Service` on `app.state`, which FastAPI types as Any; reading it
here, once, gives the endpoints a typed pool, clock and settings, and a test can override one
dependency instead of building a whole app state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import asyncpg
from fastapi import Depends, Request

from services.api.replies import ReplyWaiter
from shared.domain.clock import Clock
from shared.runtime import Service
from shared.settings import Settings

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]
else:
    # asyncpg's Pool is generic only in its stubs, and FastAPI evaluates a dependency's
    # annotations at run time, where it cannot be subscripted.
    Pool = asyncpg.Pool


def service(request: Request) -> Service:
    running: Service = request.app.state.service
    return running


def pool(request: Request) -> Pool:
    return service(request).pool


def clock(request: Request) -> Clock:
    return service(request).clock


def settings(request: Request) -> Settings:
    return service(request).settings


def replies(request: Request) -> ReplyWaiter:
    waiter: ReplyWaiter = request.app.state.replies
    return waiter


Database = Annotated[Pool, Depends(pool)]
Replies = Annotated[ReplyWaiter, Depends(replies)]
CurrentClock = Annotated[Clock, Depends(clock)]
CurrentSettings = Annotated[Settings, Depends(settings)]
