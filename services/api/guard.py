"""Where a request enters the API: the checks every endpoint needs before any model sees it.

`RequestGuard` bounds the body (413) and rejects what PostgreSQL cannot store and no model can
see everywhere (422 naming the field): a NUL character (U+0000) anywhere in the path, a query
parameter or a JSON body, including dict keys and the free-form JSON of flows and custom fields,
and a number JSON cannot hold (NaN, Infinity). One check here covers every endpoint, present
and future, instead of a string type each model would have to remember.

`ServerErrors` turns an unhandled exception into a logged 500 problem, answered on a connection
that stays open: Starlette's own last-resort handler re-raises after answering, and uvicorn then
closes the connection, which breaks the client's next request on it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.problems import Problem, field_error, invalid

log = logging.getLogger(__name__)

NUL = "\x00"


def payload_too_large(limit: int) -> Problem:
    return Problem(
        413, "payload_too_large", "Payload too large",
        f"the request body may be at most {limit} bytes", max_bytes=limit,
    )  # fmt: skip


class RequestGuard:
    """Body size limits (the default, and larger ones for named paths) and NUL/number checks."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        larger: dict[str, int],
        streamed: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger = larger
        # Paths whose route reads the body as a stream (an upload of any size): passed on
        # unread (413 here only for a declared length past their limit); the route counts what
        # it reads. (Raising from `receive` would reach the route as an exception it does not
        # handle, and be a 500.)
        self.streamed = streamed or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = list(_query_errors(scope))
        if errors:
            await invalid(errors).response()(scope, receive, send)
            return
        if scope["path"] in self.streamed and scope["method"] == "POST":
            await self._stream(scope, receive, send, self.streamed[scope["path"]])
            return
        limit = self.larger.get(scope["path"], self.max_body_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await payload_too_large(limit).response()(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before it finished sending: nobody to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await payload_too_large(limit).response()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(scope):
            errors = list(_json_errors(body))
            if errors:
                await invalid(errors).response()(scope, receive, send)
                return
        await self.app(scope, replay(body, receive), send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await payload_too_large(limit).response()(scope, receive, send)
            return
        await self.app(scope, receive, send)


def replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for an app that reads a body this middleware has read already."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replayed


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    return int(raw) if raw is not None and raw.strip().isdigit() else None


def _is_json(scope: Scope) -> bool:
    """As FastAPI decides: no content type, application/json, or any +json type."""
    raw = _header(scope, b"content-type")
    if raw is None:
        return True
    media = raw.decode("latin-1").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _query_errors(scope: Scope) -> Iterator[dict[str, Any]]:
    if NUL in scope["path"]:
        yield field_error("path", "the path contains a NUL character", "string_nul")
    query = scope["query_string"].decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if NUL in name:
            yield field_error("query", "a parameter name contains a NUL character", "string_nul")
        elif NUL in value:
            yield field_error(f"query.{name}", "contains a NUL character", "string_nul")


def _json_errors(body: bytes) -> Iterator[dict[str, Any]]:
    try:
        document = json.loads(body)
    except ValueError:
        return  # not JSON: FastAPI answers that with its own 422
    yield from _walk(document, ())


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    # Fields are named as request validation names them: dotted, without "body".
    where = ".".join(path) or "body"
    if isinstance(value, str):
        if NUL in value:
            yield field_error(where, "contains a NUL character", "string_nul")
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield field_error(where, "must be a finite number", "finite_number")
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield field_error(where, "a key contains a NUL character", "string_nul")
            else:
                yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))


class ServerErrors:
    """The last resort: an exception no handler took is logged with its traceback and answered
    as a 500 problem, without the details (they are for the log, not the client)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unhandled error answering %s %s", scope["method"], scope["path"])
            if started:
                # Part of the answer is out (a streamed export): only a closed connection can
                # tell the client that the rest will not come.
                raise
            problem = Problem(500, "internal_error", "Internal server error",
                              "the server failed to answer; the error is logged")  # fmt: skip
            await problem.response()(scope, receive, send)
