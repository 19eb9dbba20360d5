"""Fixtures: databases on SQLite and PostgreSQL, a connected runtime, a live server."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rindle import AllowAll, LocalStorage, Profile, Rindle
from rindle.model import migrate
from rindle.model.tables import metadata

PG_ADMIN_URL = os.environ.get("RINDLE_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RINDLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "test-secret-key-0123456789abcdef"


class ImageProfile(Profile):
    """The profile most tests use: a few image types, 1 MB, 25 MP, no variants."""

    name = "image"
    storage = "local"
    allow_mime = ["image/png", "image/jpeg", "image/webp", "image/gif"]
    max_bytes = 1024 * 1024
    max_pixels = 25_000_000


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql://", "postgres://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database migrated to head, dropped after the session."""
    name = f"rindle_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    migrate.upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "rindle.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


async def _truncate(url: str) -> None:
    import asyncpg

    names = ", ".join(t.name for t in metadata.sorted_tables)
    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    try:
        await conn.execute(f"TRUNCATE {names} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "rindle.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "rindle.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(pg_database: str) -> str:
    asyncio.run(_truncate(pg_database))
    return pg_database


MakeMedia = Callable[..., Rindle]


@pytest.fixture
def make_media(database_url: str, tmp_path: Path) -> MakeMedia:
    """Build a runtime on the parametrized database with Local storage in tmp_path."""

    def make(**overrides: Any) -> Rindle:
        options: dict[str, Any] = dict(
            database_url=database_url,
            storages={"local": LocalStorage(root=tmp_path / "files")},
            profiles=[ImageProfile],
            secret_keys=[SECRET],
            authorizer=AllowAll(),
        )
        options.update(overrides)
        return Rindle(**options)

    return make


@pytest.fixture
async def media(make_media: MakeMedia) -> AsyncIterator[Rindle]:
    runtime = make_media()
    async with runtime.connected():
        yield runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A real uvicorn server on a loopback port, in the test's event loop."""

    def __init__(self, app: Any, *, access_log: bool = True) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="info",
                                lifespan="on", access_log=access_log, log_config=None)
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.get_running_loop().create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return self
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        raise RuntimeError("uvicorn did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
