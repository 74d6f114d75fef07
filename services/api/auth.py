"""Who is calling: the API key's user, and the organization context of the request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request

from services.api import keys
from services.api.deps import pool as pool
from services.api.problems import Problem
from shared.db.sql import Queries
from shared.domain.permissions import Caller, Role
from shared.messaging.envelope import Actor

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


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
    if authorization is None or not authorization.lower().startswith("bearer "):
        raise Problem(401, "unauthorized", "Unauthorized",
                      "send an API key as 'Authorization: Bearer <key>'")  # fmt: skip
    key_hash = keys.hash_key(authorization[7:].strip())
    async with pool(request).acquire() as connection:
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
