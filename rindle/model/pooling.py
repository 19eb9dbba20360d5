"""What both pools share: the checkout deadline, clean-up a cancellation can't cut short, and
a task's lease on one pooled connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from ..errors import ConfigurationError

CHECKOUT_TIMEOUT = 30.0  # seconds to wait for a pooled connection before giving up

_cleanups: set[asyncio.Task[None]] = set()


class Lease:
    """One task's hold on one pooled connection, between its statements.

    ``busy`` while a statement (or a transaction) of the task runs on it; ``armed`` while
    a check is scheduled that ends the lease if the task has moved on to other work.
    """

    __slots__ = ("driver", "conn", "task", "busy", "armed")

    def __init__(self, driver: Any, conn: Any, task: asyncio.Task[Any] | None) -> None:
        self.driver = driver
        self.conn = conn
        self.task = task
        self.busy = True
        self.armed = False


def in_background(work: Awaitable[None]) -> asyncio.Future[None]:
    """Run clean-up in a task of its own that ``drain_cleanups`` waits for."""
    task = asyncio.ensure_future(work)
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "unretrieved"
    return task


async def to_completion(work: Awaitable[None], *, wait: bool = True) -> None:
    """Run clean-up to its end even if the caller is cancelled (again) meanwhile.

    anyio's shield does not stop a plain ``task.cancel()``; a rollback or a pool release cut
    short would leave a connection holding SQLite's write lock or a pool slot lost for good.
    With ``wait=False`` (a cancelled caller) it runs in the background: the rollback may
    have to wait for the lock a cut-off BEGIN is still queued for, and a cancelled task
    should end now.
    """
    task = in_background(work)
    if wait:
        await asyncio.shield(task)


async def drain_cleanups() -> None:
    """Wait for clean-up still running in the background (before a pool closes)."""
    if _cleanups:
        await asyncio.gather(*list(_cleanups), return_exceptions=True)


def pool_timeout(dialect: str) -> ConfigurationError:
    """The error for a checkout that waited ``CHECKOUT_TIMEOUT`` in vain."""
    return ConfigurationError(
        f"no {dialect} connection became free within {CHECKOUT_TIMEOUT:.0f} s: raise the pool "
        "size or look for work holding transactions open", code="database_pool_exhausted")
