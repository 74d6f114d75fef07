"""One running Dripline (api, scheduler and stats as real processes) shared by the HTTP tests of
this package. Tests stay independent by acting as people of their own: every `person` is a new
user with its own key, so no test sees another's organizations, campaigns or contacts."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dripline.processes import ServiceProcess, stop_all
from services.api.accounts import create_user_with_key
from shared.db.pool import connect, create_pool
from shared.file_clock import FileClock
from shared.messaging.kafka import ensure_topics
from shared.settings import Settings
from tests.support import Infra, make_settings, new_ports

SERVICES = ("api", "scheduler", "stats")


@dataclass
class Live:
    settings: Settings
    processes: dict[str, ServiceProcess]

    @property
    def url(self) -> str:
        return self.processes["api"].url


@pytest.fixture(scope="session")
def live(infra: Infra, template_database: str) -> Iterator[Live]:
    name = f"dripline_live_{uuid.uuid4().hex[:10]}"
    prefix = f"live{uuid.uuid4().hex[:8]}."

    async def create() -> None:
        admin = await connect(infra.admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        finally:
            await admin.close()
        await ensure_topics(infra.bootstrap, prefix)

    async def drop() -> None:
        admin = await connect(infra.admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    # Empty until a test moves it (the `clock` fixture): until then the services read real time.
    clock_file = Path(tempfile.mkdtemp(prefix="dripline-clock-")) / "now"
    # A smaller import limit than the default, so that a test can go past it cheaply.
    settings = new_ports(
        make_settings(
            infra.dsn(name), infra.bootstrap, prefix, clock_file=clock_file,
            max_import_bytes=4 * 1024 * 1024, max_bulk_import_bytes=4 * 1024 * 1024,
            max_attachment_bytes=64 * 1024,
        )
    )  # fmt: skip
    processes = {service: ServiceProcess(service, settings) for service in SERVICES}
    for process in processes.values():
        process.start()
    try:

        async def healthy() -> None:
            for process in processes.values():
                await process.wait_healthy()

        asyncio.run(healthy())
        yield Live(settings, processes)
    finally:
        codes = stop_all(processes)
        asyncio.run(drop())
    assert codes == dict.fromkeys(SERVICES, 0), {
        service: processes[service].output()[-3000:] for service, code in codes.items() if code
    }


class Clock:
    """The live services' clock (shared/file_clock.py): drip schedules move with it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.at = datetime.now(UTC).replace(microsecond=0)
        FileClock.set(path, self.at)

    def set(self, at: datetime) -> None:
        self.at = at
        FileClock.set(self.path, at)

    def advance(self, delta: timedelta) -> None:
        self.set(self.at + delta)


@pytest.fixture
def clock(live: Live) -> Iterator[Clock]:
    assert live.settings.clock_file is not None
    controlled = Clock(live.settings.clock_file)
    try:
        yield controlled
    finally:
        live.settings.clock_file.write_text("")  # real time again for the other tests


@pytest.fixture
async def db(live: Live) -> AsyncIterator[asyncpg.Pool[Any]]:
    """The live database, for setting up states the engine would reach and checking effects."""
    pool = await create_pool(live.settings.dsn, min_size=1, max_size=3)
    try:
        yield pool
    finally:
        await pool.close()


@dataclass
class Person:
    user_id: uuid.UUID
    email: str
    key: str
    url: str
    _stack: contextlib.AsyncExitStack = field(repr=False)
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.at(None)

    def at(self, organization_id: str | uuid.UUID | None) -> httpx.AsyncClient:
        """A client acting in an organization (X-Organization-Id), or in personal mode."""
        headers = {"Authorization": f"Bearer {self.key}"}
        if organization_id is not None:
            headers["X-Organization-Id"] = str(organization_id)
        client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)
        self._stack.push_async_callback(client.aclose)
        return client


PersonFactory = Callable[[str], Awaitable[Person]]


@pytest.fixture
async def person(live: Live, db: asyncpg.Pool[Any]) -> AsyncIterator[PersonFactory]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(label: str) -> Person:
            email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
            async with db.acquire() as connection:
                issued = await create_user_with_key(connection, email)
            return Person(issued.user_id, email, issued.plaintext, live.url, stack)

        yield make


@dataclass
class Organization:
    id: str
    owner: Person
    admin: Person
    member: Person
    other_member: Person

    def people(self) -> dict[str, Person]:
        return {"owner": self.owner, "admin": self.admin, "member": self.member}


@pytest.fixture
async def organization(person: PersonFactory) -> Organization:
    """An organization with an owner, an admin and two members; admin view off."""
    owner = await person("owner")
    created = await owner.client.post("/organizations", json={"name": "Acme"})
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    people = {
        "admin": await person("admin"),
        "member": await person("member"),
        "other_member": await person("other"),
    }
    for label, someone in people.items():
        role = "admin" if label == "admin" else "member"
        added = await owner.client.post(
            f"/organizations/{org_id}/members", json={"email": someone.email, "role": role}
        )
        assert added.status_code == 201, added.text
    return Organization(org_id, owner, people["admin"], people["member"], people["other_member"])


async def set_admin_view(organization: Organization, enabled: bool) -> None:
    response = await organization.owner.client.patch(
        f"/organizations/{organization.id}", json={"admin_view_enabled": enabled}
    )
    assert response.status_code == 200, response.text
