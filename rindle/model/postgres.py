"""PostgreSQL on asyncpg: a pool whose checkouts are pinged, ``:name`` SQL numbered, savepoints."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from ..errors import ConfigurationError
from ..logs import get_logger
from .placeholders import numbered
from .pooling import CHECKOUT_TIMEOUT, pool_timeout, to_completion
from .transactions import Transaction
from .urls import pg_dsn

log = get_logger("rindle.model")


def _value(value: Any) -> Any:
    # asyncpg takes and returns json columns as text unless a codec is set; text both ways
    # keeps the two dialects alike (records decode it).
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


class PostgresDriver:
    """Runs statements on asyncpg's pool; nested transactions are asyncpg's savepoints."""

    dialect = "postgresql"

    def __init__(self, *, url: str, size: int) -> None:
        self._dsn = pg_dsn(url)
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
                raise pool_timeout("PostgreSQL") from None
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
            await to_completion(self.pool.release(conn))  # resets an unfinished transaction

    async def fetch(self, conn: Any, sql: str,
                    params: Mapping[str, Any]) -> list[dict[str, Any]]:
        text, names = numbered(sql)
        rows = await conn.fetch(text, *(_value(params[n]) for n in names))
        return [dict(r) for r in rows]

    async def execute(self, conn: Any, sql: str, params: Mapping[str, Any]) -> None:
        text, names = numbered(sql)
        await conn.execute(text, *(_value(params[n]) for n in names))

    @asynccontextmanager
    async def transaction(self, tx: Transaction) -> AsyncIterator[None]:
        tx.depth += 1
        try:
            async with tx.conn.transaction():  # nested ones are savepoints
                yield
        finally:
            tx.depth -= 1
