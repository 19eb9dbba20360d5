"""Transactions: a rolled-back savepoint forgets what it queued, and a transaction belongs to
the task that opened it (not to the tasks it starts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from rindle import ConfigurationError
from rindle.model.db import Store
from rindle.model.records import Change
from rindle.model.repo import Repo


class _Log:
    """What a store published and which after-commit work ran, in order."""

    def __init__(self, store: Store) -> None:
        self.published: list[str] = []
        self.ran: list[str] = []
        self._store = store
        store.listeners.append(self._listen)

    async def _listen(self, change: Change) -> None:
        self.published.append(change.entity_id)

    async def change(self, name: str) -> None:
        await self._store.record(Change(entity="asset", entity_id=name, asset_id=name,
                                        from_state="staged", to_state="validating",
                                        at=datetime.now(UTC)))

    async def after(self, name: str) -> None:
        async def work() -> None:
            self.ran.append(name)

        await self._store.after_commit(work)

    async def both(self, name: str) -> None:
        await self.change(name)
        await self.after(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store(database_url, pool_size=4)
    await store.connect()
    try:
        yield store
    finally:
        await store.disconnect()


async def _kinds(repo: Repo) -> list[str]:
    return sorted(e.kind for e in await repo.list_outbox())


# --- savepoints ------------------------------------------------------------------------


async def test_a_rolled_back_savepoint_publishes_nothing_and_runs_no_after_work(
        store: Store) -> None:
    repo, log = Repo(store), _Log(store)
    async with store.transaction():
        await repo.add_outbox("outer", {})
        await log.both("outer")
        with pytest.raises(RuntimeError):
            async with store.transaction():
                await repo.add_outbox("inner", {})
                await log.both("inner")
                raise RuntimeError("boom")
        await log.both("outer-after")
        assert log.published == [] and log.ran == []  # nothing before the commit
    assert await _kinds(repo) == ["outer"]
    assert log.published == ["outer", "outer-after"]
    assert log.ran == ["outer", "outer-after"]


async def test_a_savepoint_inside_a_rolled_back_one_goes_with_it(store: Store) -> None:
    log = _Log(store)
    async with store.transaction():
        await log.both("outer")
        with pytest.raises(RuntimeError):
            async with store.transaction():
                await log.both("middle")
                async with store.transaction():  # released, but into "middle"
                    await log.both("inner")
                raise RuntimeError("boom")
        async with store.transaction():  # a released savepoint keeps what it queued
            await log.both("kept")
    assert log.published == ["outer", "kept"]
    assert log.ran == ["outer", "kept"]


async def test_a_rolled_back_transaction_publishes_nothing(store: Store) -> None:
    log = _Log(store)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await log.both("doomed")
            async with store.transaction():
                await log.both("doomed-inner")
            raise RuntimeError("boom")
    assert log.published == [] and log.ran == []
    await log.both("outside")  # outside a transaction: at once
    assert log.published == ["outside"] and log.ran == ["outside"]


# --- tasks -------------------------------------------------------------------------------


async def test_a_child_task_cannot_use_its_parents_transaction(store: Store) -> None:
    # asyncio copies the context (and with it the open transaction) into every task made
    # inside it; on the parent's connection the child's statements would run inside the
    # parent's transaction, interleaved with its own.
    repo, log = Repo(store), _Log(store)

    async def write() -> None:
        await repo.add_outbox("child", {})

    async def read() -> None:
        await store.fetch_all("SELECT 1 AS x")

    async def own_transaction() -> None:
        async with store.transaction():
            await repo.add_outbox("child-tx", {})

    async def record() -> None:
        await log.both("child")

    async with store.transaction():
        await repo.add_outbox("parent", {})
        for attempt in (write, read, own_transaction, record):
            with pytest.raises(ConfigurationError) as err:
                await asyncio.create_task(attempt())
            assert err.value.code == "transaction_in_child_task"
        failures = await asyncio.gather(write(), read(), return_exceptions=True)
        assert [getattr(f, "code", f) for f in failures] == ["transaction_in_child_task"] * 2
        await repo.add_outbox("parent-after", {})  # the parent's transaction goes on
    assert await _kinds(repo) == ["parent", "parent-after"]
    assert log.published == [] and log.ran == []


async def test_a_child_task_that_outlives_the_transaction_is_in_none(store: Store) -> None:
    repo, log = Repo(store), _Log(store)
    committed = asyncio.Event()

    async def later() -> None:
        await committed.wait()
        await repo.add_outbox("child", {})  # autocommits on a connection of its own
        async with store.transaction():  # an outermost transaction of its own
            await repo.add_outbox("child-tx", {})
            await log.both("child-tx")
        await log.both("child")  # outside any transaction: published at once

    async with store.transaction():
        await repo.add_outbox("parent", {})
        child = asyncio.create_task(later())
    committed.set()
    await child
    assert await _kinds(repo) == ["child", "child-tx", "parent"]
    assert log.published == ["child-tx", "child"]
    assert log.ran == ["child-tx", "child"]


async def test_a_task_started_before_the_transaction_is_not_in_it(store: Store) -> None:
    repo = Repo(store)
    opened, written = asyncio.Event(), asyncio.Event()

    async def other() -> None:
        await opened.wait()
        await store.fetch_all("SELECT 1 AS x")  # its own connection: no error, no waiting
        written.set()

    task = asyncio.create_task(other())
    async with store.transaction():
        await repo.add_outbox("parent", {})
        opened.set()
        await written.wait()
    await task
    assert await _kinds(repo) == ["parent"]
