"""The database: raw async drivers, transactions, changes published after commit.

SQLite runs on aiosqlite and PostgreSQL on asyncpg, driven directly. SQLAlchemy is *not*
used at run time: importing it (with the asyncio extension an async engine needs) costs
about 26 MiB of RSS in every process -- more than libvips itself -- and a variant worker
would carry it for nothing but a handful of short statements. The schema is still declared
with SQLAlchemy (``tables.py``) and evolved by Alembic, both loaded only when migrating.

Statements are plain SQL written in ``repo.py`` with ``:name`` placeholders; this module
adapts them to each driver (``$1`` for asyncpg) and adapts values (JSON as text,
timestamps as UTC).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio

from ..errors import ConfigurationError
from ..logs import get_logger
from .records import Change

log = get_logger("rindle.model")

Listener = Callable[[Change], Awaitable[None]]
Row = dict[str, Any]


class _Tx:
    """The connection of a task's open transaction, and how deep its savepoints go."""

    __slots__ = ("conn", "depth")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.depth = 0


# The changes made inside the current task's outermost transaction, published after commit.
_pending: contextvars.ContextVar[list[Change] | None] = contextvars.ContextVar(
    "rindle_pending_changes", default=None
)
# The connection of the current task's transaction, if any.
_tx: contextvars.ContextVar[_Tx | None] = contextvars.ContextVar(
    "rindle_tx_connection", default=None
)
# Work to run once the outermost transaction has committed (dispatching outbox rows).
_after: contextvars.ContextVar[list[Callable[[], Awaitable[None]]] | None] = (
    contextvars.ContextVar("rindle_after_commit", default=None)
)


def normalize_url(url: str) -> tuple[str, str]:
    """The SQLAlchemy async URL (for Alembic) and the dialect name, from any spelling."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base in ("postgres", "postgresql"):
        return f"postgresql+asyncpg://{rest}", "postgresql"
    if base == "sqlite":
        if rest in ("/:memory:", "") or ":memory:" in rest and "cache=shared" not in rest:
            # Each connection would get its own empty in-memory database.
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


def sqlite_target(url: str) -> tuple[str, bool]:
    """(database, uri) for ``sqlite3.connect`` from a SQLAlchemy-style SQLite URL.

    ``sqlite:///rel.db`` is relative to the working directory, ``sqlite:////abs.db``
    absolute; ``?uri=true`` passes the rest as an SQLite URI (``file:x?mode=memory``).
    """
    rest = url.partition("://")[2]
    database, _, query = rest[1:].partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    uri = any(k == "uri" and v.lower() in ("1", "true", "yes") for k, v in params)
    others = [(k, v) for k, v in params if k != "uri"]
    if others and not uri:
        raise ValueError(f"unsupported SQLite URL options {urlencode(others)!r}: only "
                         "uri=true (with the options of an SQLite URI) is understood")
    if uri and others:
        database = f"{database}?{urlencode(others)}"
    return database, uri


def _pg_dsn(url: str) -> str:
    return "postgresql://" + url.partition("://")[2]


_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` placeholders -> asyncpg's ``$1``; the names in argument order.

    Rindle's SQL never puts a colon inside a string literal or uses ``::`` casts, so a
    regular expression is enough here.
    """
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql), tuple(names)


def _sqlite_value(value: Any) -> Any:
    # The text form SQLAlchemy wrote before Rindle dropped it, so existing databases keep
    # comparing correctly: fixed-width UTC, no zone suffix (sorts as text).
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _pg_value(value: Any) -> Any:
    # asyncpg takes and returns json columns as text unless a codec is set; text both ways
    # keeps the two dialects alike (records decode it).
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


CHECKOUT_TIMEOUT = 30.0  # seconds to wait for a pooled connection before giving up


_cleanups: set[asyncio.Task[None]] = set()


async def _to_completion(work: Awaitable[None], *, wait: bool = True) -> None:
    """Run clean-up to its end even if the caller is cancelled (again) meanwhile.

    anyio's shield does not stop a plain ``task.cancel()``; a rollback or a pool release cut
    short would leave a connection holding SQLite's write lock or a pool slot lost for good.
    With ``wait=False`` (a cancelled caller) it runs in the background: the rollback may
    have to wait for the lock a cut-off BEGIN is still queued for, and a cancelled task
    should end now.
    """
    task = asyncio.ensure_future(work)
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "unretrieved"
    if wait:
        await asyncio.shield(task)


async def _drain_cleanups() -> None:
    if _cleanups:
        await asyncio.gather(*list(_cleanups), return_exceptions=True)


def _pool_timeout(dialect: str) -> ConfigurationError:
    return ConfigurationError(
        f"no {dialect} connection became free within {CHECKOUT_TIMEOUT:.0f} s: raise the pool "
        "size or look for work holding transactions open", code="database_pool_exhausted")


class _SqlitePool:
    """At most ``size`` aiosqlite connections, opened on demand and reused.

    Written here because aiosqlite has no pool; each connection owns a thread, which must be
    joined (closed) before the process can exit.
    """

    def __init__(self, database: str, uri: bool, size: int) -> None:
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
            raise _pool_timeout("SQLite") from None
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
        await _drain_cleanups()  # connections still rolling back come home first
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


class _Sqlite:
    dialect = "sqlite"

    def __init__(self, url: str, size: int) -> None:
        database, uri = sqlite_target(url)
        self.pool = _SqlitePool(database, uri, size)

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
            await _to_completion(self._reset_and_release(conn),
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

    async def fetch(self, conn: Any, sql: str, params: Mapping[str, Any]) -> list[Row]:
        rows = await conn.execute_fetchall(sql, {k: _sqlite_value(v) for k, v in params.items()})
        return [dict(r) for r in rows]

    async def execute(self, conn: Any, sql: str, params: Mapping[str, Any]) -> None:
        await conn.execute(sql, {k: _sqlite_value(v) for k, v in params.items()})

    @asynccontextmanager
    async def transaction(self, tx: _Tx) -> AsyncIterator[None]:
        conn = tx.conn
        if tx.depth == 0:
            # BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and
            # then writes would otherwise fail at once with "database is locked" when
            # another connection wrote in between; this way it waits (busy_timeout).
            begin, commit, rollback = "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"
        else:
            name = f"rindle_sp_{tx.depth}"
            begin, commit = f"SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}"
            rollback = f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
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
                    for statement in rollback.split("; "):
                        await conn.execute(statement)

                await _to_completion(undo())
            raise
        finally:
            tx.depth -= 1
        await conn.execute(commit)


class _Postgres:
    dialect = "postgresql"

    def __init__(self, url: str, size: int) -> None:
        self._dsn = _pg_dsn(url)
        self._size = size
        self.pool: Any = None

    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._size)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    async def _acquire(self) -> Any:
        """A pooled connection that answers.

        asyncpg notices a connection the server dropped (a restart, an idle timeout, a
        failover) only when it is used, so each checkout is pinged first, as SQLAlchemy's
        ``pool_pre_ping`` did: the dead one is discarded and the caller gets a live one
        instead of an error.
        """
        for _ in range(self._size + 1):
            try:
                conn = await self.pool.acquire(timeout=CHECKOUT_TIMEOUT)
            except TimeoutError:
                raise _pool_timeout("PostgreSQL") from None
            try:
                await conn.execute("SELECT 1")
                return conn
            except Exception as exc:
                # Whatever the server's goodbye left behind (a closed socket, an admin
                # shutdown notice, a protocol in a state asyncpg can't leave), SELECT 1
                # failing means this connection is done for.
                log.info("dropping a PostgreSQL connection that failed a ping: %s",
                         type(exc).__name__)
                with contextlib.suppress(Exception):  # the pool may have let go of it
                    conn.terminate()
                with contextlib.suppress(Exception):  # it reopens the slot on next use
                    await self.pool.release(conn)
            except BaseException:
                await self.pool.release(conn)
                raise
        raise ConfigurationError("no PostgreSQL connection answers",
                                 code="database_unreachable")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        conn = await self._acquire()
        try:
            yield conn
        finally:
            await _to_completion(self.pool.release(conn))  # resets an unfinished transaction

    async def fetch(self, conn: Any, sql: str, params: Mapping[str, Any]) -> list[Row]:
        text, names = _numbered(sql)
        rows = await conn.fetch(text, *(_pg_value(params[n]) for n in names))
        return [dict(r) for r in rows]

    async def execute(self, conn: Any, sql: str, params: Mapping[str, Any]) -> None:
        text, names = _numbered(sql)
        await conn.execute(text, *(_pg_value(params[n]) for n in names))

    @asynccontextmanager
    async def transaction(self, tx: _Tx) -> AsyncIterator[None]:
        tx.depth += 1
        try:
            async with tx.conn.transaction():  # nested ones are savepoints
                yield
        finally:
            tx.depth -= 1


class Store:
    """Owns the driver's connection pool; runs statements and hands out transactions.

    Statements outside ``transaction()`` run on their own (autocommit). Inside one, every
    statement of the task uses the transaction's connection (a context variable), so
    repository code never passes connections around.
    """

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.dialect = normalize_url(url)[1]
        self._pool_size = pool_size
        self._driver: _Sqlite | _Postgres | None = None
        self.listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

    @property
    def connected(self) -> bool:
        return self._driver is not None

    async def connect(self) -> None:
        if self._driver is not None:
            return
        driver: _Sqlite | _Postgres | None = None
        try:
            if self.dialect == "sqlite":
                driver = _Sqlite(self.url, self._pool_size)
            else:
                driver = _Postgres(self.url, self._pool_size)
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

    def _require(self) -> _Sqlite | _Postgres:
        if self._driver is None:
            raise ConfigurationError("the database is not connected: use `async with "
                                     "media.connected():` or mount media.lifespan",
                                     code="not_connected")
        return self._driver

    # --- statements ----------------------------------------------------------------------

    async def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """The rows of ``sql`` (``:name`` placeholders) as dicts of column -> value."""
        driver = self._require()
        tx = _tx.get()
        if tx is not None:
            return await driver.fetch(tx.conn, sql, params or {})
        async with driver.connection() as conn:
            return await driver.fetch(conn, sql, params or {})

    async def fetch_one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        driver = self._require()
        tx = _tx.get()
        if tx is not None:
            await driver.execute(tx.conn, sql, params or {})
            return
        async with driver.connection() as conn:
            await driver.execute(conn, sql, params or {})

    # --- transactions --------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A transaction; changes recorded inside it are published only after it commits.

        Nested calls become savepoints of the outer transaction.
        """
        driver = self._require()
        outer = _tx.get()
        if outer is not None:
            async with driver.transaction(outer):
                yield
            return
        pending: list[Change] = []
        after: list[Callable[[], Awaitable[None]]] = []
        p_token = _pending.set(pending)
        a_token = _after.set(after)
        try:
            async with driver.connection() as conn:
                tx = _Tx(conn)
                t_token = _tx.set(tx)
                try:
                    async with driver.transaction(tx):
                        yield
                finally:
                    _tx.reset(t_token)
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
