"""The data layer on raw drivers: SQL adaptation, stored formats, pooling and transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from rindle import ConfigurationError, Rindle
from rindle.model.db import Store, sqlite_target
from rindle.model.placeholders import numbered


def test_named_placeholders_become_numbered_for_asyncpg() -> None:
    sql, names = numbered("UPDATE t SET a = :a, b = :b WHERE id = :id AND a <> :a")
    assert sql == "UPDATE t SET a = $1, b = $2 WHERE id = $3 AND a <> $1"
    assert names == ("a", "b", "id")


@pytest.mark.parametrize("sql", [
    "SELECT ':x' AS a",
    "SELECT 'it''s :x' AS a",
    "SELECT E'it\\'s :x' AS a",
    'SELECT 1 AS ":x"',
    'SELECT 1 AS "a "":x"""',
    "SELECT 1 -- :x",
    "SELECT 1 /* :x */",
    "SELECT 1 /* nested /* :x */ still a comment :x */",
    "SELECT $$:x$$, $tag$ :x $$ :x $tag$",
    "SELECT a::text, '1'::integer",
    "SELECT 'unterminated :x",
])
def test_colons_that_are_not_placeholders_are_left_alone(sql: str) -> None:
    # Where SQLite's own tokenizer sees no placeholder, asyncpg must not get one either.
    assert numbered(sql) == (sql, ())


def test_placeholders_around_literals_comments_and_casts_are_numbered() -> None:
    sql, names = numbered("SELECT ':a' AS \":b\", :a::integer -- :c\n, /* :d */ :e, 'x:'||:a")
    assert sql == "SELECT ':a' AS \":b\", $1::integer -- :c\n, /* :d */ $2, 'x:'||$1"
    assert names == ("a", "e")


async def test_colons_in_literals_identifiers_and_comments_mean_the_same_on_both(
        media: Rindle) -> None:
    row = await media.store.fetch_one(
        "SELECT ':not_a_param' AS x, :real AS y, 'it''s :q' AS z, 1 AS \":w\" -- :c\n"
        "/* :d */", {"real": "yes"})
    assert row == {"x": ":not_a_param", "y": "yes", "z": "it's :q", ":w": 1}
    entry = await media.repo.add_outbox("k", {})
    await media.store.execute(
        "UPDATE rindle_outbox SET kind = 'a:b' /* :kind */ WHERE id = :id -- AND kind = :kind",
        {"id": entry.id})
    assert [e.kind for e in await media.repo.list_outbox()] == ["a:b"]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_casts_keep_working_on_postgresql(media: Rindle) -> None:
    row = await media.store.fetch_one("SELECT :n::integer + 1 AS v, '7'::integer AS w",
                                      {"n": 41})
    assert row == {"v": 42, "w": 7}


@pytest.mark.parametrize(("url", "target"), [
    ("sqlite:///rel/x.db", ("rel/x.db", False)),
    ("sqlite:////abs/x.db", ("/abs/x.db", False)),
    ("sqlite+aiosqlite:////abs/x.db", ("/abs/x.db", False)),
    ("sqlite:///file:mem1?mode=memory&cache=shared&uri=true",
     ("file:mem1?mode=memory&cache=shared", True)),
])
def test_sqlite_urls(url: str, target: tuple[str, bool]) -> None:
    assert sqlite_target(url) == target


def test_unknown_sqlite_url_options_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout=5"):
        sqlite_target("sqlite:///x.db?timeout=5")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_timestamps_are_fixed_width_utc_text(media: Rindle) -> None:
    # The text form SQLAlchemy wrote, so databases made by earlier versions keep sorting
    # and comparing correctly against what is written now.
    east = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
    entry = await media.repo.add_outbox("k", {"x": [1]})
    await media.store.execute("UPDATE rindle_outbox SET available_at = :t WHERE id = :id",
                              {"t": east, "id": entry.id})
    path = media.database_url.partition(":///")[2]
    with sqlite3.connect(path) as raw:
        stored, payload = raw.execute("SELECT available_at, payload FROM rindle_outbox").fetchone()
    assert stored == "2026-01-02 03:04:05.000600"
    assert payload == '{"x": [1]}'
    read = await media.repo.get_outbox(entry.id)
    assert read is not None and read.available_at == east and read.payload == {"x": [1]}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_rows_written_by_sqlalchemy_read_back(media: Rindle) -> None:
    path = media.database_url.partition(":///")[2]
    with sqlite3.connect(path) as raw:  # a row as SQLAlchemy 2 stored it
        raw.execute(
            "INSERT INTO rindle_assets (id, profile, state, kind, storage, storage_key, "
            "metadata, created_at, updated_at, state_changed_at) VALUES ('a1', 'image', "
            "'staged', 'image', 'local', 'k1', '{\"w\": 1}', '2025-05-06 07:08:09.000010', "
            "'2025-05-06 07:08:09.000010', '2025-05-06 07:08:09.000010')")
    asset = await media.repo.require_asset("a1")
    assert asset.metadata == {"w": 1}
    assert asset.created_at == datetime(2025, 5, 6, 7, 8, 9, 10, tzinfo=UTC)


async def test_a_failed_transaction_leaves_nothing_and_the_pool_usable(media: Rindle) -> None:
    with pytest.raises(RuntimeError):
        async with media.store.transaction():
            await media.repo.add_outbox("doomed", {})
            raise RuntimeError("boom")
    assert await media.repo.list_outbox(kind="doomed") == []
    # Every connection of the pool is still usable afterwards.
    await asyncio.gather(*(media.repo.add_outbox("ok", {}) for _ in range(30)))
    assert len(await media.repo.list_outbox(kind="ok")) == 30


async def test_a_failed_savepoint_keeps_the_outer_transaction(media: Rindle) -> None:
    async with media.store.transaction():
        await media.repo.add_outbox("outer", {})
        with pytest.raises(RuntimeError):
            async with media.store.transaction():
                await media.repo.add_outbox("inner", {})
                raise RuntimeError("boom")
    assert [e.kind for e in await media.repo.list_outbox()] == ["outer"]


async def test_a_cancelled_transaction_rolls_back(media: Rindle) -> None:
    entered = asyncio.Event()

    async def slow() -> None:
        async with media.store.transaction():
            await media.repo.add_outbox("cancelled", {})
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(slow())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await media.repo.list_outbox(kind="cancelled") == []
    await media.repo.add_outbox("after", {})  # the write lock was released


async def test_an_unreachable_database_is_a_configuration_error(tmp_path: Path) -> None:
    store = Store("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigurationError) as err:
        await store.connect()
    assert err.value.code == "database_unreachable"
    assert not store.connected


async def test_queries_need_a_connection(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ConfigurationError) as err:
        await store.fetch_all("SELECT 1")
    assert err.value.code == "not_connected"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_connections_the_server_dropped_are_replaced(media: Rindle) -> None:
    import asyncpg

    await asyncio.gather(*(media.repo.add_outbox("warm", {}) for _ in range(5)))
    # Kill every pooled connection server-side, as a PostgreSQL restart would.
    admin = await asyncpg.connect(media.database_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await admin.close()
    await asyncio.gather(*(media.repo.add_outbox("after", {}) for _ in range(5)))
    assert len(await media.repo.list_outbox(kind="after")) == 5


async def test_cancelled_while_waiting_for_the_write_lock_leaves_no_lock_behind(
        tmp_path: Path) -> None:
    # A task cancelled while BEGIN IMMEDIATE waits: aiosqlite still runs the BEGIN later in
    # its thread. The connection must come back to the pool rolled back, or it would hold
    # the write lock for good and swallow every later write.
    path = tmp_path / "x.db"
    store = Store(f"sqlite:///{path}", pool_size=2)
    await store.connect()
    try:
        await store.execute("CREATE TABLE t (x INTEGER)")
        holding, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with store.transaction():
                holding.set()
                await release.wait()

        async def waiter() -> None:
            async with store.transaction():
                pass

        held = asyncio.create_task(holder())
        await holding.wait()
        waiting = asyncio.create_task(waiter())
        await asyncio.sleep(0.3)  # blocked in BEGIN IMMEDIATE (busy_timeout)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        release.set()
        await held
        await asyncio.sleep(0.3)
        for n in range(4):  # every pooled connection in turn
            await store.execute("INSERT INTO t VALUES (:n)", {"n": n})
        with sqlite3.connect(path, timeout=1) as other:  # not through the pool
            assert sorted(r[0] for r in other.execute("SELECT x FROM t")) == [0, 1, 2, 3]
            other.execute("INSERT INTO t VALUES (9)")  # and the write lock is free
    finally:
        await store.disconnect()
