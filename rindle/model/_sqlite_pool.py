"""Reuse SQLite connections across queries instead of opening one per query.

``databases`` 0.9 (dormant upstream) opens a new aiosqlite connection — a new thread and a
new sqlite3 handle — for every query outside a transaction. At several milliseconds each,
that dominated short jobs. This pool keeps a few idle connections and hands each out to one
user at a time, exactly as ``databases`` expects from its pool.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiosqlite


class ReusingSQLitePool:
    """A drop-in for ``databases.backends.sqlite.SQLitePool`` that keeps idle connections."""

    def __init__(self, original: Any, *, max_idle: int = 8) -> None:
        self._original = original
        self._database = original._database
        self._options = original._options
        self._memref = getattr(original, "_memref", None)
        self._idle: list[aiosqlite.Connection] = []
        self._max_idle = max_idle
        self._lock = asyncio.Lock()

    async def acquire(self) -> aiosqlite.Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn._running and conn._connection is not None:
                return conn
        connection = aiosqlite.connect(database=self._database, isolation_level=None,
                                       **self._options)
        await connection.__aenter__()
        await connection.execute("PRAGMA busy_timeout = 30000")
        # In WAL mode NORMAL still never corrupts the database; it only skips the fsync per
        # commit (a power cut may lose the last commits, not consistency), which made every
        # small state change cost a disk flush.
        await connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    async def release(self, connection: aiosqlite.Connection) -> None:
        healthy = connection._running and connection._connection is not None
        if healthy and not connection.in_transaction and len(self._idle) < self._max_idle:
            self._idle.append(connection)
            return
        await connection.__aexit__(None, None, None)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.__aexit__(None, None, None)


def install(database: Any) -> ReusingSQLitePool:
    """Swap the pool of a ``databases.Database`` on SQLite; returns the new pool."""
    backend = database._backend
    pool = ReusingSQLitePool(backend._pool)
    backend._pool = pool
    return pool
