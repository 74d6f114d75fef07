from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from dripline.processes import SERVICES, ServiceProcess, stop_all
from services.api.accounts import create_user_with_key
from services.stats.verify import settled_drift
from shared.settings import Settings


@dataclass
class Stack:
    settings: Settings
    processes: dict[str, ServiceProcess]
    api: httpx.AsyncClient
    key: str
    user_id: Any

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.processes[name]


@pytest.fixture
async def stack(settings: Settings, pool: asyncpg.Pool[Any]) -> AsyncIterator[Stack]:
    """All four services as real processes on this test's database and topics."""
    processes = {name: ServiceProcess(name, settings) for name in SERVICES}
    for process in processes.values():
        process.start()
    async with pool.acquire() as connection:
        issued = await create_user_with_key(connection, "e2e@example.com")
    try:
        for process in processes.values():
            await process.wait_healthy()
        async with httpx.AsyncClient(
            base_url=processes["api"].url,
            headers={"Authorization": f"Bearer {issued.plaintext}"},
            timeout=30,
        ) as client:
            yield Stack(settings, processes, client, issued.plaintext, issued.user_id)
        # Every scenario ends with the statistics equal to a recount (once the stats service
        # has consumed the scenario's events), while the services still run.
        async with pool.acquire() as connection:
            drifted = await settled_drift(connection, settle_s=15)
        assert not drifted, "\n".join(str(d) for d in drifted)
    finally:
        codes = stop_all(processes)
    # Graceful shutdown is part of the contract: every service exits cleanly.
    assert codes == dict.fromkeys(SERVICES, 0), {
        name: processes[name].output()[-3000:] for name, code in codes.items() if code != 0
    }
