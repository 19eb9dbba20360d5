"""The database: an async SQLAlchemy engine, transactions, changes published after commit."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.base import Executable

from ..errors import ConfigurationError
from .records import Change

log = logging.getLogger("rindle.model")

Listener = Callable[[Change], Awaitable[None]]

# The changes made inside the current task's outermost transaction, published after commit.
_pending: contextvars.ContextVar[list[Change] | None] = contextvars.ContextVar(
    "rindle_pending_changes", default=None
)
# The connection of the current task's transaction, if any.
_conn: contextvars.ContextVar[AsyncConnection | None] = contextvars.ContextVar(
    "rindle_tx_connection", default=None
)
# Work to run once the outermost transaction has committed (dispatching outbox rows).
_after: contextvars.ContextVar[list[Callable[[], Awaitable[None]]] | None] = (
    contextvars.ContextVar("rindle_after_commit", default=None)
)


def normalize_url(url: str) -> tuple[str, str]:
    """The async driver URL (aiosqlite/asyncpg) and the dialect name, from any spelling."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base in ("postgres", "postgresql"):
        return f"postgresql+asyncpg://{rest}", "postgresql"
    if base == "sqlite":
        if rest in ("/:memory:", "") or ":memory:" in rest and "cache=shared" not in rest:
            # Each aiosqlite connection would get its own empty in-memory database.
            raise ValueError(
                "an in-memory SQLite database is per-connection: use a file "
                "(sqlite:///./rindle.db) or a shared cache (sqlite:///file:x?mode=memory"
                "&cache=shared&uri=true)"
            )
        return f"sqlite+aiosqlite://{rest}", "sqlite"
    raise ValueError(f"unsupported database {scheme!r}: use sqlite:/// or postgresql://")


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and status output."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}" if ":" in creds else url
    return url


class Store:
    """Owns the SQLAlchemy async engine; runs statements and hands out transactions.

    Statements outside ``transaction()`` run in their own short transaction. Inside one,
    every statement of the task uses the transaction's connection (a context variable), so
    repository code never passes connections around. On SQLite, transactions begin with
    ``BEGIN IMMEDIATE``: a transaction that reads and then writes would otherwise fail at
    once with "database is locked" when another connection wrote in between; taking the
    write lock up front makes it wait (``busy_timeout``) instead.
    """

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10) -> None:
        self.url, self.dialect = normalize_url(url)
        self._pool_size = pool_size
        self._max_overflow = max_overflow
        self.engine: AsyncEngine | None = None
        self.listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

    @property
    def connected(self) -> bool:
        return self.engine is not None

    async def connect(self) -> None:
        if self.engine is not None:
            return
        if self.dialect == "sqlite":
            engine = create_async_engine(self.url, connect_args={"timeout": 30},
                                         pool_size=self._pool_size,
                                         max_overflow=self._max_overflow,
                                         poolclass=AsyncAdaptedQueuePool)
            _sqlite_events(engine)
        else:
            engine = create_async_engine(self.url, pool_size=self._pool_size,
                                         max_overflow=self._max_overflow, pool_pre_ping=True)
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            await engine.dispose()
            raise ConfigurationError(
                f"cannot connect to the database {redact_url(self.url)}: "
                f"{type(exc).__name__}", code="database_unreachable") from exc
        self.engine = engine

    async def disconnect(self) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await engine.dispose()

    def _engine(self) -> AsyncEngine:
        if self.engine is None:
            raise ConfigurationError("the database is not connected: use `async with "
                                     "media.connected():` or mount media.lifespan",
                                     code="not_connected")
        return self.engine

    # --- statements ----------------------------------------------------------------------

    async def fetch_all(self, stmt: Executable) -> list[Row[Any]]:
        conn = _conn.get()
        if conn is not None:
            return list((await conn.execute(stmt)).all())
        async with self._engine().begin() as own:
            return list((await own.execute(stmt)).all())

    async def fetch_one(self, stmt: Executable) -> Row[Any] | None:
        rows = await self.fetch_all(stmt)
        return rows[0] if rows else None

    async def execute(self, stmt: Executable) -> None:
        conn = _conn.get()
        if conn is not None:
            await conn.execute(stmt)
            return
        async with self._engine().begin() as own:
            await own.execute(stmt)

    # --- transactions --------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A transaction; changes recorded inside it are published only after it commits.

        Nested calls become savepoints of the outer transaction.
        """
        outer = _conn.get()
        if outer is not None:
            async with outer.begin_nested():
                yield
            return
        pending: list[Change] = []
        after: list[Callable[[], Awaitable[None]]] = []
        p_token = _pending.set(pending)
        a_token = _after.set(after)
        try:
            async with self._engine().connect() as conn:
                conn = await conn.execution_options(rindle_immediate=True)
                c_token = _conn.set(conn)
                try:
                    async with conn.begin():
                        yield
                finally:
                    _conn.reset(c_token)
        finally:
            _pending.reset(p_token)
            _after.reset(a_token)
        await self._publish(pending)
        for fn in after:
            try:
                await fn()
            except Exception:  # the commit stands; the outbox sweeper retries the work
                log.exception("after-commit work failed")

    async def after_commit(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` after the current transaction commits (now, outside a transaction)."""
        after = _after.get()
        if after is not None:
            after.append(fn)
        else:
            await fn()

    async def record(self, change: Change) -> None:
        """Queue a change for after the current commit, or publish it now outside a transaction."""
        pending = _pending.get()
        if pending is not None:
            pending.append(change)
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


def _sqlite_events(engine: AsyncEngine) -> None:
    # SQLAlchemy's documented recipe for pysqlite/aiosqlite: stop the driver from emitting
    # its own BEGIN, and emit it ourselves, so savepoints work and we choose the lock mode.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        # WAL lets readers go on while one writer commits; NORMAL skips the fsync per commit
        # (a power cut may lose the last commits, never consistency).
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("rindle_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
