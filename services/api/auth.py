"""Who is calling: the API key's user, and the organization context of the request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request

from services.api import keys
from services.api.deps import pool as pool
from services.api.problems import Problem
from shared.db.pool import DbConnection, PoolConnectionProxy
from shared.db.sql import Queries
from shared.domain.permissions import Caller, Role
from shared.messaging.envelope import Actor

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

if TYPE_CHECKING:
    Connection = PoolConnectionProxy[Any]
else:
    # generic only in asyncpg's stubs; FastAPI evaluates the annotation at run time
    Connection = PoolConnectionProxy


@dataclass(frozen=True)
class Principal:
    caller: Caller
    email: str

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.caller.user_id, organization_id=self.caller.organization_id)


async def principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_organization_id: Annotated[UUID | None, Header()] = None,
) -> Principal:
    key_hash = _key_hash(authorization)
    async with pool(request).acquire() as connection:
        return await _authenticate(connection, key_hash, x_organization_id)


async def request_connection(request: Request) -> AsyncIterator[Connection]:
    """One pooled connection for the whole of a request's handling, authentication included,
    given back when the endpoint returns (scope "function", before the answer is sent)."""
    async with pool(request).acquire() as connection:
        yield connection


RequestConnection = Annotated[Connection, Depends(request_connection, scope="function")]


async def principal_on_connection(
    connection: RequestConnection,
    authorization: Annotated[str | None, Header()] = None,
    x_organization_id: Annotated[UUID | None, Header()] = None,
) -> Principal:
    """`principal`, on the request's connection: an endpoint that reads the database once or
    twice, and takes `RequestConnection` too, borrows one connection instead of two (each
    borrowing costs a round trip to reset it when it goes back; under bench.api_load, a
    second connection per request was a tenth of the API's database round trips). Only for
    endpoints that hold no connection while they wait on anything else."""
    return await _authenticate(connection, _key_hash(authorization), x_organization_id)


def _key_hash(authorization: str | None) -> str:
    if authorization is None or not authorization.lower().startswith("bearer "):
        raise Problem(401, "unauthorized", "Unauthorized",
                      "send an API key as 'Authorization: Bearer <key>'")  # fmt: skip
    return keys.hash_key(authorization[7:].strip())


async def _authenticate(
    connection: DbConnection, key_hash: str, x_organization_id: UUID | None
) -> Principal:
    user = await connection.fetchrow(QUERIES["authenticate"], key_hash)
    if user is None:
        raise Problem(401, "unauthorized", "Unauthorized", "unknown or revoked API key")
    if x_organization_id is None:
        return Principal(Caller(user["id"], None, None), user["email"])
    member = await connection.fetchrow(QUERIES["membership"], x_organization_id, user["id"])
    if member is None:
        detail = "the caller is not a member of the organization in X-Organization-Id"
        raise Problem(403, "not_a_member", "Permission denied", detail)
    caller = Caller(user["id"], x_organization_id, Role(member["role"]),
                    admin_view_enabled=member["admin_view_enabled"])  # fmt: skip
    return Principal(caller, user["email"])


CurrentPrincipal = Annotated[Principal, Depends(principal)]
# The caller, authenticated on the request's connection (`RequestConnection`).
ConnectedPrincipal = Annotated[Principal, Depends(principal_on_connection)]
