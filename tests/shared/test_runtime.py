"""shared.runtime: a periodic job pauses its interval between runs, unless it is woken."""

from __future__ import annotations

import asyncio

from shared.runtime import Service
from shared.settings import Settings


async def test_a_woken_job_runs_again_at_once_and_otherwise_waits_its_interval() -> None:
    service = Service("test", Settings(sweep_interval_s=3600), description="test")
    runs: list[int] = []
    ran = asyncio.Event()

    async def job(_: Service) -> None:
        runs.append(len(runs))
        ran.set()

    service.every_sweep("job")(job)
    task = asyncio.create_task(service._repeat("job", job))
    try:
        await asyncio.wait_for(ran.wait(), 5)
        ran.clear()
        await asyncio.sleep(0.2)
        assert runs == [0]  # pausing its hour
        service.wake("job")
        await asyncio.wait_for(ran.wait(), 5)
        assert runs == [0, 1]
        service.wake("other")  # another job's wake ends nothing here
        await asyncio.sleep(0.2)
        assert runs == [0, 1]
    finally:
        task.cancel()
