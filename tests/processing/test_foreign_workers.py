"""A worker of another database on the same rq queue never swallows a job.

Real rq worker processes (``rindle worker``) on the real Redis, and two PostgreSQL databases:
the runtime's own and another one, whose worker listens on the same queue name as a staging
worker sharing production's Redis would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rindle import Rindle
from rindle.model import identity, migrate
from rindle.model.db import Store
from tests.conftest import REDIS_URL, _pg_admin, _pg_url
from tests.support.images import png

REPO = Path(__file__).resolve().parents[2]
APP = "tests.support.rq_app:media"


@pytest.fixture(scope="module")
def other_database() -> Iterator[str]:
    """A second PostgreSQL database, migrated: the one the stray worker serves."""
    name = f"rindle_other_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    migrate.upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Workers:
    """``rindle worker`` processes started by a test, stopped at its end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "rindle.cli", "worker", "--app", APP, "--name", name],
            env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
            cwd=REPO, start_new_session=True)
        self.procs.append(proc)
        _wait_registered(env["RINDLE_TEST_RQ_QUEUE"], name)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    yield started
    started.stop()


def _wait_registered(queue_name: str, worker_name: str, timeout: float = 20) -> None:
    from redis import Redis
    from rq import Queue, Worker

    conn = Redis.from_url(REDIS_URL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = {w.name for w in Worker.all(queue=Queue(queue_name, connection=conn))}
            if worker_name in names:
                return
            time.sleep(0.05)
    finally:
        conn.close()
    raise AssertionError(f"worker {worker_name} never registered on {queue_name}")


async def _wait_for(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _failed_jobs(queue_name: str) -> dict[str, str]:
    """The shared queue's FailedJobRegistry: job id -> the error rq kept for it."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job

    conn = Redis.from_url(REDIS_URL)
    try:
        registry = Queue(queue_name, connection=conn).failed_job_registry
        jobs = Job.fetch_many(registry.get_job_ids(), connection=conn)
        return {j.id: (j.latest_result().exc_string if j.latest_result() else "")
                for j in jobs if j is not None}
    finally:
        conn.close()


async def test_a_worker_of_another_database_hands_the_jobs_back(
        rq_env: dict[str, str], other_database: str, workers: Workers) -> None:
    from rindle.ops.doctor import run_doctor
    from tests.support import rq_app

    queue_name = rq_env["RINDLE_TEST_RQ_QUEUE"]
    stray, own = f"stray-{uuid.uuid4().hex[:6]}", f"own-{uuid.uuid4().hex[:6]}"
    # The stray worker is alone on the queue at first, so it takes every job it can.
    workers.start({**rq_env, "RINDLE_TEST_DATABASE_URL": other_database}, stray)
    media: Rindle = rq_app.build()
    async with media.connected():
        ours = media.queue.fingerprint  # type: ignore[attr-defined]
        assert ours is not None
        assets = [(await media.upload("image", png(30 + i, 20), filename=f"{i}.png")).asset.id
                  for i in range(6)]

        async def all_refused() -> bool:
            return len(_failed_jobs(queue_name)) == len(assets)

        # Every promotion was taken by the stray worker and refused: nothing ran.
        await _wait_for(all_refused, 20, "the stray worker to refuse the promotions")
        assert {(await media.asset(a)).state for a in assets} == {"validating"}

        started = time.monotonic()
        workers.start(rq_env, own)

        async def all_ready() -> bool:
            return {(await media.asset(a)).state for a in assets} == {"ready"}

        # Far inside the sweeper's stale window (900 s): the jobs were handed back.
        await _wait_for(all_ready, 30, "every asset to be ready")
        assert time.monotonic() - started < 30
        for asset_id in assets:
            [variant] = await media.repo.list_variants(asset_id)
            assert variant.state == "ready"
        entries = await media.repo.list_outbox()
        ran = [e for e in entries if e.kind in ("promote_asset", "process_variants")]
        assert {e.state for e in ran} == {"done"}
        assert {e.attempts for e in ran} == {1}  # handed back once, run once

        report = await media.runtime_status()
        [finding] = [f for f in report["outbox"]["findings"] if f["class"] == "foreign_worker"]
        refused = _failed_jobs(queue_name)
        assert finding["count"] == len(refused) >= len(assets)
        [sample] = finding["samples"]
        assert (sample["worker"], sample["database"], sample["count"]) == (
            stray, other_database, len(refused))
        theirs = sample["fingerprint"]
        assert theirs not in (None, ours)
        assert sample["where"].endswith(f":{workers.procs[0].pid}")
        assert report["healthy"] is False
        [advice] = [r for r in report["recommendations"] if r["class"] == "foreign_worker"]
        assert "give the runtimes different rq queue names" in advice["how"]

        # rq keeps each refused copy as failed, with both databases named.
        for job_id, error in refused.items():
            assert job_id.startswith("rindle-")
            assert ours in error and theirs in error and "ForeignJob" in error

        doctor = {c.id: c for c in (await run_doctor(media)).checks}
        check = doctor["doctor.workers"]
        assert check.status == "warn"
        assert f"worker {stray} on " in check.summary
        assert f"serves another database, {other_database} ({theirs}" in check.summary
        assert f"{own} on " in check.summary and ": this database" in check.summary
        assert check.fix is not None and "different rq queue names" in check.fix

    # One warning line per refused job on the stray worker, and no traceback.
    log = workers.log(stray)
    lines = [line for line in log.splitlines() if "refused job" in line]
    assert len(lines) == len(refused)
    assert all("WARNING" in line and ours in line and theirs in line for line in lines)
    assert "Traceback" not in log
    assert "Traceback" not in workers.log(own)


async def test_a_job_for_an_entry_the_database_does_not_know_fails_loudly(
        rq_env: dict[str, str], workers: Workers) -> None:
    """A job without a fingerprint (an older Rindle enqueued it) whose entry this database
    does not have is not reported done: it fails, with the reason, on one log line."""
    from redis import Redis
    from rq import Queue

    queue_name = rq_env["RINDLE_TEST_RQ_QUEUE"]
    name = f"own-{uuid.uuid4().hex[:6]}"
    workers.start(rq_env, name)
    entry = str(uuid.uuid4())
    conn = Redis.from_url(REDIS_URL)
    try:
        job = Queue(queue_name, connection=conn).enqueue(
            "rindle.processing.jobs.rq_entry", args=(entry, APP), job_id=f"rindle-{entry}")
        deadline = time.monotonic() + 20
        while job.get_status(refresh=True) not in ("failed", "finished"):
            assert time.monotonic() < deadline, "the job never ended"
            await asyncio.sleep(0.05)
        assert job.get_status() == "failed"
        result = job.latest_result()
        assert result is not None and f"outbox entry {entry} is unknown" in result.exc_string
    finally:
        conn.close()
    [line] = [line for line in workers.log(name).splitlines() if "refused job" in line]
    assert "WARNING" in line and "carries no fingerprint" in line
    assert "Traceback" not in workers.log(name)


async def test_the_fingerprint_is_the_databases_own(postgres_url: str, other_database: str,
                                                    sqlite_url: str) -> None:
    """Stable for one database, different for another, independent of the URL spelling,
    and made again when its row is gone."""
    stores = [Store(u) for u in (postgres_url, other_database, sqlite_url,
                                 postgres_url.replace("127.0.0.1", "localhost"))]
    for store in stores:
        await store.connect()
    try:
        prints = [await identity.fingerprint(s) for s in stores]
        assert prints[0] == await identity.fingerprint(stores[0])
        assert len(set(prints[:3])) == 3 and all(p and len(p) == 16 for p in prints)
        assert prints[3] == prints[0]  # another URL, the same database
        await stores[2].execute("DELETE FROM rindle_meta")
        assert await identity.fingerprint(stores[2], create=False) is None
        fresh = await identity.fingerprint(stores[2])
        assert fresh not in (None, prints[2])
        assert await identity.fingerprint(stores[2]) == fresh
    finally:
        for store in stores:
            await store.disconnect()


def test_the_tables_match_the_migrations(sqlite_url: str, other_database: str) -> None:
    """tables.py declares what the migrations made, rindle_meta included, on both databases."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from rindle.model.db import normalize_url
    from rindle.model.tables import metadata

    def differences(conn: object) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return [d for d in compare_metadata(context, metadata)
                if "alembic_version" not in str(d)]

    async def compare(url: str) -> list[object]:
        engine = create_async_engine(normalize_url(url)[0])
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(differences)
        finally:
            await engine.dispose()

    for url in (sqlite_url, other_database):
        assert asyncio.run(compare(url)) == [], url
