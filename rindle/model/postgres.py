"""PostgreSQL on asyncpg: a pool whose dead connections are replaced, ``:name`` SQL numbered,
savepoints, and a reset on release only when a session setting needs one."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..logs import get_logger
from .placeholders import numbered
from .pooling import (
    CHECKOUT_TIMEOUT,
    drain_cleanups,
    in_background,
    pool_timeout,
    to_completion,
)
from .urls import pg_dsn

log = get_logger("rindle.model")

# Statements that leave state on the session (not just in a transaction) for the next user
# of a pooled connection; after one, the connection gets asyncpg's full reset (RESET ALL,
# UNLISTEN *, CLOSE ALL, advisory locks released) on release. Rindle's own SQL has none.
_SESSION_LEVEL = re.compile(r"^\s*(SET|RESET|LISTEN|DECLARE|PREPARE|DISCARD|LOAD)\b"
                            r"|advisory_lock|set_config", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def _leaves_session_state(sql: str) -> bool:
    return _SESSION_LEVEL.search(sql) is not None


def _value(value: Any) -> Any:
    # asyncpg takes and returns json columns as text unless a codec is set; text both ways
    # keeps the two dialects alike (records decode it).
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


class PostgresDriver:
    """Runs statements on asyncpg's pool; nested transactions are asyncpg's savepoints.

    asyncpg notices a connection the server dropped (a restart, an idle timeout, a
    failover) only when it is used. A checkout whose first statement is safe to run again
    (a SELECT, a BEGIN: ``retry_safe``) is therefore not pinged: if that statement finds the
    connection dead, the connection is dropped and the statement runs on another one. Any
    other checkout is pinged first (``SELECT 1``), as SQLAlchemy's ``pool_pre_ping`` did, so
    a write never runs twice.

    On release asyncpg runs ``RESET ALL`` and friends, a round trip per checkout; here that
    happens only for a connection that ran a statement leaving session state behind (an
    unfinished transaction is still rolled back by asyncpg itself).
    """

    dialect = "postgresql"

    def __init__(self, *, url: str, size: int) -> None:
        self._dsn = pg_dsn(url)
        self._size = size
        self.pool: Any = None
        self._dirty: set[int] = set()  # server pids of connections needing a full reset

    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._size,
                                              reset=self._reset)

    async def close(self) -> None:
        if self.pool is not None:
            await drain_cleanups()  # connections on their way back first
            pool, self.pool = self.pool, None
            await pool.close()

    async def _reset(self, conn: Any) -> None:
        # asyncpg has rolled back an open transaction and dropped listeners already.
        if self._dirty:
            pid = conn.get_server_pid()
            if pid in self._dirty:
                self._dirty.discard(pid)
                await conn.execute(conn.get_reset_query())

    # --- connections --------------------------------------------------------------------

    def serializes(self, sql: str | None) -> bool:
        """PostgreSQL's writers need no turn in this process (row locks order them): every
        statement runs on a pooled connection."""
        return False

    async def acquire_writer(self) -> Any:  # pragma: no cover - serializes() is False
        raise NotImplementedError("PostgreSQL has no single writer")

    async def release_writer(self, exc: BaseException | None) -> None:  # pragma: no cover
        raise NotImplementedError("PostgreSQL has no single writer")

    def retry_safe(self, sql: str | None) -> bool:
        """Whether ``sql`` (``None``: BEGIN) may run again on another connection after the
        first one turned out dead: it changes nothing."""
        return sql is None or sql.lstrip()[:6].upper() == "SELECT"

    async def acquire(self, *, verify: bool) -> Any:
        """A pooled connection; with ``verify``, one that answered a ping.

        Whatever the server's goodbye left behind (a closed socket, an admin shutdown
        notice, a protocol in a state asyncpg can't leave), SELECT 1 failing means the
        connection is done for: it is discarded and the next one tried.
        """
        pool = self.pool
        if pool is None:
            raise ConfigurationError("the database is disconnected", code="not_connected")
        for _ in range(self._size + 1):
            # With a connection idle, the checkout needs no timer (asyncpg runs a timed
            # checkout in a task of its own).
            timeout = None if pool.get_idle_size() else CHECKOUT_TIMEOUT
            try:
                conn = await pool.acquire(timeout=timeout)
            except TimeoutError:
                raise pool_timeout("PostgreSQL") from None
            if not verify:
                return conn
            try:
                await conn.execute("SELECT 1")
                return conn
            except Exception as exc:
                log.info("dropping a PostgreSQL connection that failed a ping: %s",
                         type(exc).__name__)
                await self.discard(conn)
            except BaseException:
                await pool.release(conn)
                raise
        raise ConfigurationError("no PostgreSQL connection answers",
                                 code="database_unreachable")

    def disconnected(self, exc: BaseException, conn: Any) -> bool:
        """Whether a failed statement found its connection dead (not an SQL error)."""
        import asyncpg

        try:
            if conn.is_closed():
                return True
        except asyncpg.InterfaceError:  # asyncpg took back a connection that died
            return True
        if isinstance(exc, (OSError, asyncpg.PostgresConnectionError,
                            asyncpg.InternalClientError, asyncpg.AdminShutdownError,
                            asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError,
                            asyncpg.IdleSessionTimeoutError)):
            return True
        return False

    async def discard(self, conn: Any) -> None:
        with contextlib.suppress(Exception):  # the pool may have let go of it
            conn.terminate()
        with contextlib.suppress(Exception):  # it reopens the slot on next use
            await self.pool.release(conn)

    def release_soon(self, conn: Any) -> None:
        """Give back a connection whose last statement succeeded (no transaction open)."""
        in_background(self.pool.release(conn, timeout=CHECKOUT_TIMEOUT))

    async def release_failed(self, conn: Any, *, cancelled: bool) -> None:
        """Give back a connection whose work failed or was cancelled; asyncpg's release
        rolls back an unfinished transaction (or drops the connection)."""
        await to_completion(self.pool.release(conn, timeout=CHECKOUT_TIMEOUT))

    # --- statements ---------------------------------------------------------------------

    async def fetch(self, conn: Any, sql: str,
                    params: Mapping[str, Any]) -> list[dict[str, Any]]:
        text, names = numbered(sql)
        if _leaves_session_state(sql):
            self._dirty.add(conn.get_server_pid())
        rows = await conn.fetch(text, *(_value(params[n]) for n in names))
        return [dict(r) for r in rows]

    async def execute(self, conn: Any, sql: str, params: Mapping[str, Any]) -> None:
        text, names = numbered(sql)
        if _leaves_session_state(sql):
            self._dirty.add(conn.get_server_pid())
        await conn.execute(text, *(_value(params[n]) for n in names))

    # --- transactions -------------------------------------------------------------------

    async def begin(self, conn: Any, depth: int) -> Any:
        """BEGIN, or a savepoint inside an open transaction (asyncpg tells them apart)."""
        transaction = conn.transaction()
        await transaction.__aenter__()
        return transaction

    async def end(self, conn: Any, token: Any, exc: BaseException | None) -> None:
        """Commit (``exc`` None) or roll back what ``begin`` began."""
        if exc is None:
            await token.__aexit__(None, None, None)
        else:
            await token.__aexit__(type(exc), exc, exc.__traceback__)
