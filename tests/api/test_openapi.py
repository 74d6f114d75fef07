"""The OpenAPI document declares every problem answer the API gives (issue 13, item 9)."""

from __future__ import annotations

import httpx

from tests.api.conftest import Live

PROBLEM_STATUSES = ("400", "401", "403", "404", "409", "413", "422", "429")


async def test_every_operation_declares_its_problem_answers(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.url) as client:
        document = (await client.get("/openapi.json")).json()
    assert "Problem" in document["components"]["schemas"]
    missing = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status in PROBLEM_STATUSES:
                content = operation["responses"].get(status, {}).get("content", {})
                if set(content) != {"application/problem+json"}:
                    missing.append(f"{method.upper()} {path} {status}")
    assert missing == []
