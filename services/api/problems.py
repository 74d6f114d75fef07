"""RFC 9457 problem details, with a stable machine `code` on every error."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = {
            "type": f"https://dripline.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM_JSON,
                            headers=headers)  # fmt: skip


def not_found(what: str) -> Problem:
    return Problem(404, f"{what}_not_found", "Not found", f"no such {what.replace('_', ' ')}")


def rate_limited(detail: str, retry_after_s: int) -> Problem:
    problem = Problem(429, "rate_limited", "Too many requests", detail,
                      retry_after_s=retry_after_s)  # fmt: skip
    problem.headers["Retry-After"] = str(retry_after_s)
    return problem


def forbidden(detail: str) -> Problem:
    return Problem(403, "permission_denied", "Permission denied", detail)


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "permission_denied",
                 404: "not_found", 405: "method_not_allowed", 409: "conflict",
                 413: "payload_too_large", 429: "rate_limited"}  # fmt: skip


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(_: Request, exc: Problem) -> JSONResponse:
        headers = dict(exc.headers)
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return exc.response(headers or None)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in error["loc"] if p != "body"),
                "message": error["msg"],
                "type": error["type"],
            }
            for error in exc.errors()
        ]
        return Problem(
            422, "validation_error", "Invalid request",
            f"{len(errors)} field(s) failed validation", errors=errors,
        ).response()  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route on the path; each method of
            # a path is a route of its own here.
            headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
        problem = Problem(exc.status_code, code, str(exc.detail), str(exc.detail))
        return problem.response(headers or None)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> set[str]:
    """The methods some route answers on this path, asked of the router itself (included
    routers hide their routes' methods)."""
    routes = request.app.router.routes
    return {
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in routes)
    }  # fmt: skip


def invalid(errors: list[dict[str, Any]]) -> Problem:
    """422 naming each bad field, in the same shape as request validation errors."""
    return Problem(422, "validation_error", "Invalid request",
                   f"{len(errors)} field(s) failed validation", errors=errors)  # fmt: skip


def field_error(field: str, message: str, type_: str = "value_error") -> dict[str, Any]:
    return {"field": field, "message": message, "type": type_}


# Every status the API answers with a problem, declared on every operation: the guard's 413 and
# 422 (NUL, size) and the authentication's 401/403 can come from any of them, and a client
# generated from the document must know the media type of each.
PROBLEM_STATUSES: dict[int, str] = {
    400: "Malformed request, e.g. a body that is not JSON, or an invalid cursor",
    401: "Missing or unknown API key",
    403: "Not a member of the organization, or not allowed to change this",
    404: "Not found, or not visible to the caller",
    409: "Status conflict, or the same Idempotency-Key still running",
    413: "Request body too large",
    422: "Invalid input; `errors` names each field",
    429: "Rate limited; see Retry-After",
    503: "Overloaded: more requests in progress than the API serves at once; see Retry-After",
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details with a stable machine `code`.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def document(app: FastAPI) -> None:
    """Declare the problem answers on every operation of the OpenAPI document, in one place
    rather than on each route (a route's own `responses` would shadow router defaults)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path_item in schema.get("paths", {}).values():
            for method, operation in path_item.items():
                if method not in _OPERATIONS:
                    continue
                responses = operation.setdefault("responses", {})
                for status, description in PROBLEM_STATUSES.items():
                    entry = responses.setdefault(str(status), {"description": description})
                    # FastAPI's own 422 declares application/json; ours is a problem.
                    entry["content"] = content
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
