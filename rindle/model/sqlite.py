"""SQLite on aiosqlite: a small connection pool, one writer at a time, values stored as
SQLAlchemy did, savepoints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigurationError
from ..logs import get_logger
from .pooling import (
    CHECKOUT_TIMEOUT,
    drain_cleanups,
    in_background,
    pool_timeout,
    to_completion,
)
from .urls import sqlite_target

log = get_logger("rindle.model")

#: Seconds a writer waits for this process's other writers, as SQLite's busy timeout would.
WRITE_TIMEOUT = 30.0


def _value(value: Any) -> Any:
    # The text form SQLAlchemy wrote before Rindle dropped it, so existing databases keep
    # comparing correctly: fixed-width UTC, no zone suffix (sorts as text).
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if value.year >= 1000:  # the same text as below, several times faster
            return value.isoformat(" ", "microseconds")
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


_AS_IS = (str, int, float, bytes, type(None))


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if type(v) in _AS_IS else _value(v) for k, v in params.items()}


def reads_only(sql: str) -> bool:
    """Whether a statement only reads (a plain SELECT): it needs no write lock."""
    return sql.lstrip()[:6].upper() == "SELECT"


class SqlitePool:
    """At most ``size`` aiosqlite connections, opened on demand and reused.

    Written here because aiosqlite has no pool; each connection owns a thread, which must be
    joined (closed) before the process can exit.
    """

    def __init__(self, *, database: str, uri: bool, size: int) -> None:
        self._database = database
        self._uri = uri
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Any] = []
        self._closed = False

    async def _open(self) -> Any:
        import aiosqlite

        conn = await aiosqlite.connect(self._database, uri=self._uri, timeout=30,
                                       isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA busy_timeout = 30000")
            # WAL lets readers go on while one writer commits; NORMAL skips the fsync per
            # commit (a power cut may lose the last commits, never consistency).
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def acquire(self) -> Any:
        if self._closed:
            raise ConfigurationError("the database is disconnected", code="not_connected")
        if self._slots.locked():
            try:
                async with asyncio.timeout(CHECKOUT_TIMEOUT):
                    await self._slots.acquire()
            except TimeoutError:
                raise pool_timeout("SQLite") from None
        else:
            await self._slots.acquire()  # free: no timer needed
        try:
            return self._idle.pop() if self._idle else await self._open()
        except BaseException:
            self._slots.release()
            raise

    def put_back(self, conn: Any) -> bool:
        """Return a healthy connection at once; False if it must be closed instead."""
        if self._closed:
            return False
        self._idle.append(conn)
        self._slots.release()
        return True

    async def release(self, conn: Any, *, discard: bool = False) -> None:
        if not discard and self.put_back(conn):
            return
        try:
            await conn.close()
        finally:
            self._slots.release()

    async def close(self) -> None:
        self._closed = True
        await drain_cleanups()  # connections still rolling back come home first
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def open_own(self) -> Any:
        """A connection outside the pool's slots (the writer's), closed by its owner."""
        if self._closed:
            raise ConfigurationError("the database is disconnected", code="not_connected")
        return await self._open()


class SqliteDriver:
    """Runs statements on aiosqlite connections: one writer, a pool of readers.

    SQLite lets one connection write at a time. Left to its busy handler, twenty pooled
    connections wanting the write lock at once poll for it, sleeping up to 100 ms between
    tries: under load most of a request's time went to those sleeps. So this process
    writes through one connection: writers (transactions, and writing statements outside
    them) wait for their turn in an asyncio lock and then use the writer; the busy timeout
    is left for other processes (workers, the CLI). The writer's thread and page cache stay
    warm, and no commit waits for another connection's. Reads outside transactions run on
    the pooled readers beside it (WAL).
    """

    dialect = "sqlite"

    def __init__(self, *, url: str, size: int) -> None:
        database, uri = sqlite_target(url)
        self.pool = SqlitePool(database=database, uri=uri, size=max(1, size - 1))
        self.write_lock = asyncio.Lock()
        self._writer: Any = None

    async def open(self) -> None:
        """Nothing to do: connections open on first use."""

    async def close(self) -> None:
        await drain_cleanups()  # the writer rolling back first
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                await writer.close()
        finally:
            await self.pool.close()

    # --- the writer ---------------------------------------------------------------------

    def serializes(self, sql: str | None) -> bool:
        """Whether ``sql`` (``None``: a transaction) runs on the writer, in turn."""
        return sql is None or not reads_only(sql)

    async def acquire_writer(self) -> Any:
        """The writer connection, once this process's writer before is done with it."""
        lock = self.write_lock
        if lock.locked():
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await lock.acquire()
            except TimeoutError:
                raise sqlite3.OperationalError("database is locked") from None
        else:
            await lock.acquire()
        try:
            if self._writer is None:
                self._writer = await self.pool.open_own()
            return self._writer
        except BaseException:
            lock.release()
            raise

    async def release_writer(self, exc: BaseException | None) -> None:
        """The turn passes on; after a failure (``exc``) only once the writer is rolled back.

        Rolled back whatever in_transaction says now: a BEGIN cut off by a cancellation
        still runs later in aiosqlite's thread, and the rollback, queued behind it, is what
        keeps the writer from holding SQLite's lock for good. A cancelled caller does not
        wait for it.
        """
        if exc is None:
            self.write_lock.release()
            return
        await to_completion(self._undo_writer(),
                            wait=not isinstance(exc, asyncio.CancelledError))

    async def _undo_writer(self) -> None:
        try:
            writer = self._writer
            if writer is None:
                return
            try:
                await writer.rollback()
            except Exception:
                log.warning("could not roll back the SQLite writer; opening another")
                self._writer = None
                with contextlib.suppress(Exception):
                    await writer.close()
        finally:
            self.write_lock.release()

    # --- the readers --------------------------------------------------------------------

    def retry_safe(self, sql: str | None) -> bool:
        return False

    async def acquire(self, *, verify: bool) -> Any:
        return await self.pool.acquire()

    def release_soon(self, conn: Any) -> None:
        """Give back a connection whose last statement succeeded (no transaction open)."""
        if not self.pool.put_back(conn):
            in_background(self.pool.release(conn, discard=True))

    async def release_failed(self, conn: Any, *, cancelled: bool) -> None:
        """Give back a reader whose statement failed or was cancelled, rolled back first
        (queued behind a statement still running in its thread; a no-op when no
        transaction is open)."""
        await to_completion(self._reset_and_release(conn), wait=not cancelled)

    async def _reset_and_release(self, conn: Any) -> None:
        discard = False
        try:
            await conn.rollback()
        except Exception:
            log.warning("could not roll back an SQLite connection; closing it")
            discard = True
        await self.pool.release(conn, discard=discard)

    async def discard(self, conn: Any) -> None:
        await self.pool.release(conn, discard=True)

    def disconnected(self, exc: BaseException, conn: Any) -> bool:
        return False

    # --- statements ---------------------------------------------------------------------

    async def fetch(self, conn: Any, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        # SQLite binds :name itself, skipping literals and comments as its parser does.
        rows = await conn.execute_fetchall(sql, _params(params))
        return [dict(r) for r in rows]

    async def execute(self, conn: Any, sql: str, params: Mapping[str, Any]) -> None:
        await conn.execute(sql, _params(params))

    # --- transactions -------------------------------------------------------------------

    async def begin(self, conn: Any, depth: int) -> Any:
        """BEGIN IMMEDIATE (``depth`` 0) or a savepoint; the token ``end`` takes."""
        if depth == 0:
            # BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and
            # then writes would otherwise fail at once with "database is locked" when
            # another process wrote in between; this way it waits (busy_timeout).
            await conn.execute("BEGIN IMMEDIATE")
        else:
            await conn.execute(f"SAVEPOINT rindle_sp_{depth}")
        return depth

    async def end(self, conn: Any, token: Any, exc: BaseException | None) -> None:
        """COMMIT or RELEASE when ``exc`` is None, else roll back what ``begin`` began."""
        depth = int(token)
        name = f"rindle_sp_{depth}"
        if exc is None:
            await conn.execute("COMMIT" if depth == 0 else f"RELEASE SAVEPOINT {name}")
            return
        if depth == 0 and isinstance(exc, asyncio.CancelledError):
            # Rolled back by release_writer, in the background, so the cancelled task need
            # not wait for SQLite.
            return
        rollback = ("ROLLBACK",) if depth == 0 else (f"ROLLBACK TO SAVEPOINT {name}",
                                                    f"RELEASE SAVEPOINT {name}")

        async def undo() -> None:
            for statement in rollback:
                await conn.execute(statement)

        await to_completion(undo())
