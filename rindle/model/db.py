"""The database connection: dialect-aware URLs, transactions, and changes published after commit."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from databases import Database

from .records import Change

log = logging.getLogger("rindle.model")

Listener = Callable[[Change], Awaitable[None]]

# The changes made inside the current task's outermost transaction, published after commit.
_pending: contextvars.ContextVar[list[Change] | None] = contextvars.ContextVar(
    "rindle_pending_changes", default=None
)
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("rindle_tx_depth", default=0)
# Work to run once the outermost transaction has committed (dispatching outbox rows).
_after: contextvars.ContextVar[list[Callable[[], Awaitable[None]]] | None] = (
    contextvars.ContextVar("rindle_after_commit", default=None)
)


def normalize_url(url: str) -> tuple[str, str]:
    """The async driver URL for ``databases`` and the dialect name, from any common spelling."""
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
    """Owns the ``databases.Database`` and hands out transactions.

    SQLite allows one writer at a time and ``databases`` opens a connection per task, so two
    tasks upgrading read locks to write locks would deadlock; on SQLite, transactions in this
    process are serialized with a lock (the embedded default is a single process).
    """

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url, self.dialect = normalize_url(url)
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            options["timeout"] = 30
        else:
            options["min_size"] = min_size
            options["max_size"] = max_size
        self.database = Database(self.url, **options)
        self._pool: Any = None
        if self.dialect == "sqlite":
            from ._sqlite_pool import install

            self._pool = install(self.database)
        self.listeners: list[Listener] = []
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

    @property
    def connected(self) -> bool:
        return bool(self.database.is_connected)

    async def connect(self) -> None:
        if self.database.is_connected:
            return
        await self.database.connect()
        if self.dialect == "sqlite":
            # WAL lets readers proceed while one writer commits; it is a property of the file.
            await self.database.execute("PRAGMA journal_mode=WAL")

    async def disconnect(self) -> None:
        if self.database.is_connected:
            await self.database.disconnect()
        if self._pool is not None:
            await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A transaction; changes recorded inside it are published only after it commits."""
        depth = _depth.get()
        if depth > 0:
            token = _depth.set(depth + 1)
            try:
                async with self.database.transaction():
                    yield
            finally:
                _depth.reset(token)
            return
        pending: list[Change] = []
        after: list[Callable[[], Awaitable[None]]] = []
        p_token = _pending.set(pending)
        a_token = _after.set(after)
        d_token = _depth.set(1)
        try:
            if self._write_lock is not None:
                async with self._write_lock:
                    async with self.database.transaction():
                        # databases opens SQLite transactions with a deferred BEGIN; a write
                        # after a read in such a transaction fails at once with "database is
                        # locked" when another connection wrote in between. Taking the write
                        # lock first (like BEGIN IMMEDIATE) makes it wait its turn instead.
                        await self.database.execute("DELETE FROM rindle_outbox WHERE 0")
                        yield
            else:
                async with self.database.transaction():
                    yield
        finally:
            _pending.reset(p_token)
            _after.reset(a_token)
            _depth.reset(d_token)
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
