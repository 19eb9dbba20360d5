"""Which transaction the running task is in, and what waits for that transaction to commit."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigurationError
from .records import Change

AfterCommit = Callable[[], Awaitable[None]]


class Transaction:
    """One task's open transaction: its connection, how deep its savepoints go, and the
    changes and work queued for after its commit."""

    __slots__ = ("conn", "depth", "changes", "after", "_owner", "_open")

    def __init__(self, *, conn: Any) -> None:
        self.conn = conn
        self.depth = 0
        self.changes: list[Change] = []
        self.after: list[AfterCommit] = []
        self._owner = asyncio.current_task()
        self._open = True

    def mark(self) -> tuple[int, int]:
        """How much is queued now: where a savepoint starts."""
        return len(self.changes), len(self.after)

    def forget_since(self, mark: tuple[int, int]) -> None:
        """Drop what was queued after ``mark``: a savepoint rolled back, so it never happened."""
        changes, after = mark
        del self.changes[changes:]
        del self.after[after:]


# asyncio copies the context into every task created inside the transaction (create_task,
# gather, TaskGroup), so a child sees this too: current() tells the owner from the others.
_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "rindle_transaction", default=None
)


def current() -> Transaction | None:
    """The transaction the running task opened and is still in, if any.

    A task created inside a transaction that is still open gets a ConfigurationError rather
    than that transaction's connection; once the transaction has ended, such a task is in
    none (its statements autocommit, its own transaction is an outermost one).
    """
    tx = _current.get()
    if tx is None or not tx._open:
        return None
    if tx._owner is not asyncio.current_task():
        # Refused rather than given a connection of its own: sharing the parent's would
        # interleave two tasks' statements in one transaction (asyncpg even refuses
        # concurrent use of a connection), and a child the parent awaits (gather) is almost
        # always meant to be inside the transaction. Outside it, it would not see the
        # parent's uncommitted rows, would commit what the parent then rolls back, and would
        # wait for the parent's locks while the parent waits for it: 30 s and "database is
        # locked" on SQLite (BEGIN IMMEDIATE holds the write lock), for ever on PostgreSQL.
        raise ConfigurationError(
            "a task started inside a transaction cannot use the database while that "
            "transaction is open: await the statements in the transaction's own task, or "
            "start the task outside the transaction", code="transaction_in_child_task")
    return tx


@contextmanager
def opened(conn: Any) -> Iterator[Transaction]:
    """Make a new outermost transaction on ``conn`` the running task's, for the block."""
    tx = Transaction(conn=conn)
    token = _current.set(tx)
    try:
        yield tx
    finally:
        tx._open = False  # children that outlive it are in no transaction from now on
        _current.reset(token)
