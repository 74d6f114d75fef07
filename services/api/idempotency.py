"""`Idempotency-Key` on writes: a repeated request with the same key gets the first answer.

The first request under a key claims it in the database before it runs, so a concurrent
repeat is told to retry (409) rather than applied twice; its answer is stored and replayed,
marked `Idempotent-Replayed: true`. The same key with a different request is refused (422):
different in body, method, path or query, or in the acting context (personal mode or the
organization in X-Organization-Id), so a key never replays an answer given in another context.
A 5xx answer releases the key, so the client may retry. Keys last a day.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api import keys
from services.api.guard import replay
from services.api.problems import Problem
from shared.db.sql import Queries

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
# Keys belong to the user, found before the endpoint's own auth runs, as auth.py finds it.
AUTH = Queries.load(Path(__file__).with_name("auth.sql"))

HEADER = "idempotency-key"
HEADER_BYTES = HEADER.encode()
ORGANIZATION_HEADER = "x-organization-id"
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Uploads of any size are streamed, never read whole: an Idempotency-Key is not honoured there
# (a repeated upload only makes a second upload; nothing happens until a bulk action uses it).
STREAMED = frozenset({"/imports"})


def fingerprint(request: Request, body: bytes) -> str:
    """What the request means, as one hash: the acting context (the organization it acts for;
    the user is the key's scope), the method, the path and query, the body's media type, and
    the body. Any difference makes it another request, which the same key refuses (422)."""
    return hashlib.sha256(
        json.dumps(
            [
                _organization(request.headers.get(ORGANIZATION_HEADER)),
                request.method,
                request.url.path,
                request.url.query,
                request.headers.get("content-type", "").split(";")[0].strip().lower(),
            ]
        ).encode()
        + b"\n"
        + body
    ).hexdigest()


def _organization(header: str | None) -> str | None:
    """The organization as the API reads it: one UUID however it is spelled; a value that is
    not a UUID is kept as sent (the endpoint refuses it, and that answer is what is stored)."""
    if header is None:
        return None
    try:
        return str(UUID(header))
    except ValueError:
        return header


class IdempotencyMiddleware:
    """Plain ASGI: a request that is not a write under a key passes straight through (most
    requests; Starlette's BaseHTTPMiddleware ran every request in a task of its own with
    streams in between, a tenth of the API's CPU under bench.api_load)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITES
            or scope["path"] in STREAMED
            or not any(name == HEADER_BYTES for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await self._dispatch(request, scope, receive)
        await response(scope, receive, send)

    async def _dispatch(self, request: Request, scope: Scope, receive: Receive) -> Response:
        key = request.headers[HEADER]
        if not 1 <= len(key) <= 255:
            return Problem(
                422,
                "validation_error",
                "Invalid request",
                "Idempotency-Key must be 1-255 characters",
                errors=[
                    {
                        "field": "header.Idempotency-Key",
                        "message": "must be 1-255 characters",
                        "type": "value_error",
                    }
                ],
            ).response()
        pool = request.app.state.service.pool
        body = await request.body()
        user_id = await self._user(request, pool)
        if user_id is None:
            return await self._run(scope, body, receive)  # the endpoint answers 401
        digest = fingerprint(request, body)
        async with pool.acquire() as connection:
            claimed = await connection.fetchval(
                QUERIES["claim_idempotency_key"], user_id, key, digest
            )
            if claimed is None:
                return await self._repeat(connection, user_id, key, digest)
        response = await self._run(scope, body, receive)
        async with pool.acquire() as connection:
            if response.status_code >= 500:
                await connection.execute(QUERIES["release_idempotency_key"], user_id, key)
            else:
                content = bytes(response.body)
                stored = {
                    "body": json.loads(content) if content else None,
                    "media_type": response.headers.get("content-type"),
                }
                await connection.execute(
                    QUERIES["store_idempotent_response"], user_id, key, response.status_code, stored
                )
        return response

    async def _run(self, scope: Scope, body: bytes, receive: Receive) -> Response:
        """The app's whole answer to the request (its body read already), to store and send."""
        started: Message = {}
        chunks: list[bytes] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, replay(body, receive), sending)
        response = Response(b"".join(chunks), status_code=started["status"])
        response.raw_headers = list(started.get("headers", []))
        return response

    @staticmethod
    async def _user(request: Request, pool: Any) -> Any:
        authorization = request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer "):
            return None
        async with pool.acquire() as connection:
            user = await connection.fetchrow(
                AUTH["authenticate"], keys.hash_key(authorization[7:].strip())
            )
        return None if user is None else user["id"]

    @staticmethod
    async def _repeat(connection: Any, user_id: Any, key: str, digest: str) -> Response:
        row = await connection.fetchrow(QUERIES["get_idempotency_key"], user_id, key)
        if row is None or row["response_status"] == 0:
            return Problem(
                409,
                "idempotency_key_in_progress",
                "Request in progress",
                "a request with this Idempotency-Key is still running; retry shortly",
            ).response(headers={"Retry-After": "1"})
        if row["request_hash"] != digest:
            return Problem(
                422,
                "idempotency_key_reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was used for a different request",
            ).response()
        stored = row["response_body"]
        if stored["body"] is None:
            return Response(
                status_code=row["response_status"], headers={"Idempotent-Replayed": "true"}
            )
        return JSONResponse(
            stored["body"],
            status_code=row["response_status"],
            media_type=stored["media_type"],
            headers={"Idempotent-Replayed": "true"},
        )
