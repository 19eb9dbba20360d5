"""The database: raw async drivers, transactions, changes published after commit.

SQLite runs on aiosqlite and PostgreSQL on asyncpg, driven directly. SQLAlchemy is *not*
used at run time: importing it (with the asyncio extension an async engine needs) costs
about 26 MiB of RSS in every process -- more than libvips itself -- and a variant worker
would carry it for nothing but a handful of short statements. The schema is still declared
with SQLAlchemy (``tables.py``) and evolved by Alembic, both loaded only when migrating.

Statements are plain SQL written in ``repo.py`` with ``:name`` placeholders. This module
composes the pieces: ``urls`` (which database), ``sqlite`` and ``postgres`` (the drivers and
their pools, which adapt values; ``placeholders`` numbers ``:name`` for asyncpg; ``pooling``
holds what both pools share) and ``transactions`` (which transaction a task is in).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ..errors import ConfigurationError
from ..logs import get_logger
from . import transactions
from .pooling import CHECKOUT_TIMEOUT
from .postgres import PostgresDriver
from .records import Change
from .sqlite import SqliteDriver
from .transactions import AfterCommit
from .urls import normalize_url, redact_url, sqlite_target

__all__ = ["CHECKOUT_TIMEOUT", "Listener", "Row", "Store", "normalize_url", "redact_url",
           "sqlite_target"]

log = get_logger("rindle.model")

Listener = Callable[[Change], Awaitable[None]]
Row = dict[str, Any]

_Driver = SqliteDriver | PostgresDriver


class Store:
    """Owns the driver's connection pool; runs statements and hands out transactions.

    Statements outside ``transaction()`` run on their own (autocommit). Inside one, every
    statement of the task uses the transaction's connection (a context variable), so
    repository code never passes connections around. Only the task that opened a
    transaction may use the database while it is open (see ``transactions.current``).
    """

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.dialect = normalize_url(url)[1]
        self._pool_size = pool_size
        self._driver: _Driver | None = None
        self.listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

    @property
    def connected(self) -> bool:
        return self._driver is not None

    async def connect(self) -> None:
        if self._driver is not None:
            return
        driver: _Driver | None = None
        try:
            if self.dialect == "sqlite":
                driver = SqliteDriver(url=self.url, size=self._pool_size)
            else:
                driver = PostgresDriver(url=self.url, size=self._pool_size)
            await driver.open()
            async with driver.connection() as conn:
                await driver.fetch(conn, "SELECT 1", {})
        except ImportError as exc:
            raise ConfigurationError(
                f"the database driver is not installed ({exc.name}): pip install "
                "'rindle[postgres]' for PostgreSQL", code="database_driver_missing") from exc
        except BaseException as exc:
            if driver is not None:  # a timeout or cancellation must not leak the pool
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await driver.close()
            if not isinstance(exc, Exception):
                raise
            raise ConfigurationError(
                f"cannot connect to the database {redact_url(self.url)}: "
                f"{type(exc).__name__}", code="database_unreachable") from exc
        self._driver = driver

    async def disconnect(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()

    def _require(self) -> _Driver:
        if self._driver is None:
            raise ConfigurationError("the database is not connected: use `async with "
                                     "media.connected():` or mount media.lifespan",
                                     code="not_connected")
        return self._driver

    # --- statements ----------------------------------------------------------------------

    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """The rows of ``sql`` (``:name`` placeholders) as dicts of column -> value."""
        driver = self._require()
        tx = transactions.current()
        if tx is not None:
            return await driver.fetch(tx.conn, sql, params or {})
        async with driver.connection() as conn:
            return await driver.fetch(conn, sql, params or {})

    async def fetch_one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        driver = self._require()
        tx = transactions.current()
        if tx is not None:
            await driver.execute(tx.conn, sql, params or {})
            return
        async with driver.connection() as conn:
            await driver.execute(conn, sql, params or {})

    # --- transactions --------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A transaction; changes recorded inside it are published only after it commits.

        Nested calls become savepoints of the outer transaction. A savepoint that rolls back
        takes the changes and after-commit work queued inside it along.
        """
        driver = self._require()
        outer = transactions.current()
        if outer is not None:
            mark = outer.mark()
            try:
                async with driver.transaction(outer):
                    yield
            except BaseException:
                outer.forget_since(mark)
                raise
            return
        async with driver.connection() as conn:
            with transactions.opened(conn) as tx:
                async with driver.transaction(tx):
                    yield
        await self._publish(tx.changes)
        for fn in tx.after:
            try:
                await fn()
            except Exception:  # the commit stands; the outbox sweeper retries the work
                log.exception("after-commit work failed")

    async def after_commit(self, fn: AfterCommit) -> None:
        """Run ``fn`` after the current transaction commits (now, outside a transaction)."""
        tx = transactions.current()
        if tx is not None:
            tx.after.append(fn)
        else:
            await fn()

    async def record(self, change: Change) -> None:
        """Queue a change for after the current commit, or publish it now outside a transaction."""
        tx = transactions.current()
        if tx is not None:
            tx.changes.append(change)
        else:
            await self._publish([change])

    async def _publish(self, changes: list[Change]) -> None:
        for change in changes:
            for listener in self.listeners:
                try:
                    await listener(change)
                except Exception:  # a listener must never undo a committed change
                    log.exception("change listener failed for %s %s", change.entity,
                                  change.entity_id)
