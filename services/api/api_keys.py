"""/api-keys: the caller's own keys. A new key is shown once; only its hash is kept."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from services.api import keys
from services.api.auth import CurrentPrincipal, pool
from services.api.problems import not_found
from shared.db.sql import Queries

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
# A key is issued as accounts.py issues one (insert_api_key, in its file).
ACCOUNTS = Queries.load(Path(__file__).with_name("accounts.sql"))

router = APIRouter(prefix="/api-keys", tags=["api keys"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = (
        "default"
    )


class ApiKey(BaseModel):
    id: UUID
    name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None = None


class NewApiKey(ApiKey):
    key: str


@router.post("", status_code=201, response_model=NewApiKey, summary="Create a key")
async def create_key(body: KeyCreate, who: CurrentPrincipal, request: Request) -> NewApiKey:
    """The response is the only time the key is shown."""
    new_key = keys.generate()
    async with pool(request).acquire() as connection:
        row = await connection.fetchrow(
            ACCOUNTS["insert_api_key"], who.caller.user_id, body.name, new_key.prefix, new_key.hash
        )
    assert row is not None
    return NewApiKey(
        id=row["id"],
        name=body.name,
        key_prefix=new_key.prefix,
        created_at=row["created_at"],
        key=new_key.plaintext,
    )


@router.get("", response_model=list[ApiKey], summary="The caller's keys")
async def list_keys(who: CurrentPrincipal, request: Request) -> list[ApiKey]:
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(QUERIES["list_api_keys"], who.caller.user_id)
    return [ApiKey.model_validate(dict(row)) for row in rows]


@router.delete("/{key_id}", status_code=204, summary="Revoke a key")
async def revoke_key(key_id: UUID, who: CurrentPrincipal, request: Request) -> None:
    async with pool(request).acquire() as connection:
        if await connection.fetchval(QUERIES["revoke_api_key"], key_id, who.caller.user_id) is None:
            raise not_found("api_key")
