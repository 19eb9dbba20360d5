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

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio

from ..errors import ConfigurationError
from ..logs import get_logger
from . import transactions
from .pooling import CHECKOUT_TIMEOUT, Lease
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
T = TypeVar("T")

_Driver = SqliteDriver | PostgresDriver


class Store:
    """Owns the driver's connection pool; runs statements and hands out transactions.

    Statements outside ``transaction()`` run on their own (autocommit). Inside one, every
    statement of the task uses the transaction's connection (a context variable), so
    repository code never passes connections around. Only the task that opened a
    transaction may use the database while it is open (see ``transactions.current``).

    A task keeps the connection its statement ran on (a ``pooling.Lease``) for as long as
    it goes on issuing statements: the run of statements a request or a job makes between
    two other awaits checks a connection out once, not once per statement. The lease ends
    as soon as the task awaits anything else, so a task waiting for storage, a client or a
    timer holds no connection.
    """

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.dialect = normalize_url(url)[1]
        self._pool_size = pool_size
        self._driver: _Driver | None = None
        self._leases: dict[asyncio.Task[Any] | None, Lease] = {}
        self._background: set[asyncio.Task[None]] = set()
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
            conn = await driver.acquire(verify=False)
            try:
                await driver.fetch(conn, "SELECT 1", {})
            finally:
                driver.release_soon(conn)
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
        while self._background:  # background work still needs the connection
            await asyncio.gather(*list(self._background), return_exceptions=True)
        if self._driver is not None:
            driver, self._driver = self._driver, None
            for lease in list(self._leases.values()):
                if not lease.busy:  # a busy one goes home when its statement ends
                    self._forget(lease)
                    driver.release_soon(lease.conn)
            await driver.close()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run database work in a task of its own, off the caller's path (it must handle
        its own errors); ``disconnect`` waits for it before closing the pool."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _require(self) -> _Driver:
        if self._driver is None:
            raise ConfigurationError("the database is not connected: use `async with "
                                     "media.connected():` or mount media.lifespan",
                                     code="not_connected")
        return self._driver

    # --- leases --------------------------------------------------------------------------

    def _forget(self, lease: Lease) -> None:
        if self._leases.get(lease.task) is lease:
            del self._leases[lease.task]

    def _linger(self, lease: Lease) -> None:
        """Keep the lease until the loop's next turn: a statement the task issues before it
        awaits anything else runs on the same connection."""
        lease.busy = False
        if not lease.armed:
            lease.armed = True
            asyncio.get_running_loop().call_soon(self._expire, lease)

    def _expire(self, lease: Lease) -> None:
        lease.armed = False
        if lease.busy or self._leases.get(lease.task) is not lease:
            return  # in use again (it lingers again after), or ended already
        del self._leases[lease.task]
        lease.driver.release_soon(lease.conn)

    async def _end(self, lease: Lease, exc: BaseException) -> None:
        """End a lease whose work failed: the connection goes back rolled back."""
        self._forget(lease)
        await lease.driver.release_failed(lease.conn,
                                          cancelled=isinstance(exc, asyncio.CancelledError))

    async def _fresh(self, driver: _Driver, task: asyncio.Task[Any] | None,
                     first: Callable[[Any], Awaitable[T]], sql: str | None, *,
                     replayable: bool = False) -> tuple[Lease, T]:
        """A new lease, busy, with ``first`` (the statement ``sql``; ``None``: BEGIN) run on
        it. A checkout is pinged unless ``first`` is safe to run again: then a connection
        found dead by ``first`` itself is dropped and ``first`` runs on another one."""
        safe = replayable or driver.retry_safe(sql)
        for _ in range(self._pool_size + 1):
            conn = await driver.acquire(verify=not safe)
            lease = Lease(driver, conn, task)
            self._leases[task] = lease
            try:
                return lease, await first(conn)
            except BaseException as exc:
                if safe and isinstance(exc, Exception) and driver.disconnected(exc, conn):
                    log.info("dropping a %s connection found dead: %s", self.dialect,
                             type(exc).__name__)
                    self._forget(lease)
                    await driver.discard(conn)
                    continue
                await self._end(lease, exc)
                raise
        raise ConfigurationError(f"no {self.dialect} connection answers",
                                 code="database_unreachable")

    async def _autocommit(self, run: Callable[[Any, str, Mapping[str, Any]], Awaitable[T]],
                          sql: str, params: Mapping[str, Any], replayable: bool) -> T:
        driver = self._require()
        if driver.serializes(sql):  # SQLite's writes: on the writer, in turn
            conn = await driver.acquire_writer()
            try:
                result = await run(conn, sql, params)
            except BaseException as exc:
                await driver.release_writer(exc)
                raise
            await driver.release_writer(None)
            return result
        task = asyncio.current_task()
        lease = self._leases.get(task)
        if lease is None:
            lease, result = await self._fresh(driver, task,
                                              lambda conn: run(conn, sql, params), sql,
                                              replayable=replayable)
        else:
            lease.busy = True
            try:
                result = await run(lease.conn, sql, params)
            except BaseException as exc:
                await self._end(lease, exc)
                raise
        self._linger(lease)
        return result

    # --- statements ----------------------------------------------------------------------

    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None, *,
                        replayable: bool = False) -> list[Row]:
        """The rows of ``sql`` (``:name`` placeholders) as dicts of column -> value.

        ``replayable``: running the statement twice changes nothing more than running it
        once (an UPDATE to fixed values, an INSERT of given primary keys), so a pooled
        connection need not be pinged before it; reads are replayable anyway.
        """
        tx = transactions.current()
        if tx is not None:
            return await self._require().fetch(tx.conn, sql, params or {})
        return await self._autocommit(self._require().fetch, sql, params or {}, replayable)

    async def fetch_one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None, *,
                      replayable: bool = False) -> None:
        """Run ``sql``; ``replayable`` as for ``fetch_all``."""
        tx = transactions.current()
        if tx is not None:
            await self._require().execute(tx.conn, sql, params or {})
            return
        await self._autocommit(self._require().execute, sql, params or {}, replayable)

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
            token = await driver.begin(outer.conn, outer.depth)
            outer.depth += 1
            try:
                yield
            except BaseException as exc:
                outer.depth -= 1
                outer.forget_since(mark)
                await driver.end(outer.conn, token, exc)
                raise
            outer.depth -= 1
            try:
                await driver.end(outer.conn, token, None)
            except BaseException:
                outer.forget_since(mark)
                raise
            return
        lease: Lease | None = None
        if driver.serializes(None):  # SQLite: the writer, in turn
            conn = await driver.acquire_writer()
            try:
                token = await driver.begin(conn, 0)
            except BaseException as exc:
                await driver.release_writer(exc)
                raise
        else:
            task = asyncio.current_task()
            lease = self._leases.get(task)
            if lease is None:
                lease, token = await self._fresh(
                    driver, task, lambda conn: driver.begin(conn, 0), None)
            else:
                lease.busy = True
                try:
                    token = await driver.begin(lease.conn, 0)
                except BaseException as exc:
                    await self._end(lease, exc)
                    raise
            conn = lease.conn
        with transactions.opened(conn) as tx:
            tx.depth = 1
            try:
                try:
                    yield
                except BaseException as exc:
                    tx.depth = 0
                    await driver.end(conn, token, exc)
                    raise
                tx.depth = 0
                await driver.end(conn, token, None)
            except BaseException as exc:
                if lease is None:
                    await driver.release_writer(exc)
                else:
                    await self._end(lease, exc)
                raise
        if lease is None:
            await driver.release_writer(None)
        else:
            self._linger(lease)
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
