"""SQLite on aiosqlite: a small connection pool, values stored as SQLAlchemy did, savepoints."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigurationError
from ..logs import get_logger
from .pooling import CHECKOUT_TIMEOUT, drain_cleanups, pool_timeout, to_completion
from .transactions import Transaction
from .urls import sqlite_target

log = get_logger("rindle.model")


def _value(value: Any) -> Any:
    # The text form SQLAlchemy wrote before Rindle dropped it, so existing databases keep
    # comparing correctly: fixed-width UTC, no zone suffix (sorts as text).
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


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
        try:
            async with asyncio.timeout(CHECKOUT_TIMEOUT):
                await self._slots.acquire()
        except TimeoutError:
            raise pool_timeout("SQLite") from None
        try:
            return self._idle.pop() if self._idle else await self._open()
        except BaseException:
            self._slots.release()
            raise

    async def release(self, conn: Any, *, discard: bool = False) -> None:
        try:
            if discard or self._closed:
                await conn.close()
            else:
                self._idle.append(conn)
        finally:
            self._slots.release()

    async def close(self) -> None:
        self._closed = True
        await drain_cleanups()  # connections still rolling back come home first
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


class SqliteDriver:
    """Runs statements on pooled aiosqlite connections; transactions take the write lock."""

    dialect = "sqlite"

    def __init__(self, *, url: str, size: int) -> None:
        database, uri = sqlite_target(url)
        self.pool = SqlitePool(database=database, uri=uri, size=size)

    async def open(self) -> None:
        """Nothing to do: connections open on first use."""

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        conn = await self.pool.acquire()
        try:
            yield conn
        except BaseException as exc:
            # Always roll back, whatever in_transaction says now: a BEGIN cut off by a
            # cancellation still runs later in aiosqlite's thread, and the rollback, queued
            # behind it, is what keeps that connection from holding the write lock for
            # good. It is a no-op when no transaction is open.
            await to_completion(self._reset_and_release(conn),
                                wait=not isinstance(exc, asyncio.CancelledError))
            raise
        await self.pool.release(conn)

    async def _reset_and_release(self, conn: Any) -> None:
        discard = False
        try:
            await conn.rollback()
        except Exception:
            log.warning("could not roll back an SQLite connection; closing it")
            discard = True
        await self.pool.release(conn, discard=discard)

    async def fetch(self, conn: Any, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        # SQLite binds :name itself, skipping literals and comments as its parser does.
        rows = await conn.execute_fetchall(sql, {k: _value(v) for k, v in params.items()})
        return [dict(r) for r in rows]

    async def execute(self, conn: Any, sql: str, params: Mapping[str, Any]) -> None:
        await conn.execute(sql, {k: _value(v) for k, v in params.items()})

    @asynccontextmanager
    async def transaction(self, tx: Transaction) -> AsyncIterator[None]:
        conn = tx.conn
        rollback: tuple[str, ...]
        if tx.depth == 0:
            # BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and
            # then writes would otherwise fail at once with "database is locked" when
            # another connection wrote in between; this way it waits (busy_timeout).
            begin, commit, rollback = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
        else:
            name = f"rindle_sp_{tx.depth}"
            begin, commit = f"SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}"
            rollback = (f"ROLLBACK TO SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}")
        await conn.execute(begin)
        tx.depth += 1
        try:
            yield
        except BaseException as exc:
            outermost = tx.depth == 1
            if not (outermost and isinstance(exc, asyncio.CancelledError)):
                # (A cancelled outermost transaction is rolled back by connection(), in
                # the background, so the cancelled task need not wait for SQLite.)
                async def undo() -> None:
                    for statement in rollback:
                        await conn.execute(statement)

                await to_completion(undo())
            raise
        finally:
            tx.depth -= 1
        await conn.execute(commit)
