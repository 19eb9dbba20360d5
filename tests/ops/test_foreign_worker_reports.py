"""What an operator reads about rq workers of another database: the doctor names each worker
on the queue with the database it serves, and ``rindle status`` counts the jobs they took.

Workers are registered in the real Redis the way ``rindle worker`` registers them, without
running jobs (tests/processing/test_foreign_workers.py runs real worker processes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from rindle.model import identity
from rindle.ops.doctor import run_doctor
from rindle.processing import ownership
from rindle.processing.queue import RQQueue
from rindle.processing.rq_worker import RindleWorker
from tests.conftest import REDIS_URL, MakeMedia

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def redis() -> Iterator[Any]:
    from redis import Redis

    conn = Redis.from_url(REDIS_URL)
    yield conn
    conn.close()


@pytest.fixture
def rq_name(redis: Any) -> Iterator[str]:
    name = f"rindle-foreign-{uuid.uuid4().hex[:8]}"
    yield name
    for key in redis.scan_iter(f"*{name}*"):
        redis.delete(key)


def _register(redis: Any, queue_names: list[str], **announce: Any) -> Any:
    from rq import Queue, Worker

    queues = [Queue(n, connection=redis) for n in queue_names]
    worker = (RindleWorker(queues, connection=redis, **announce) if announce
              else Worker(queues, connection=redis))
    worker.register_birth()
    return worker


@SQLITE
async def test_the_doctor_names_each_worker_and_warns_about_another_databases(
        make_media: MakeMedia, rq_name: str, redis: Any) -> None:
    media = make_media(queue=RQQueue(REDIS_URL, name=rq_name), broadcast_url=REDIS_URL)
    async with media.connected():
        ours = await identity.fingerprint(media.store)
    assert ours is not None
    own = _register(redis, [ownership.owner_queue(rq_name, ours), rq_name], fingerprint=ours,
                    database="sqlite:///ours.db", app="app:media")
    stray = _register(redis, [rq_name], fingerprint="0123456789abcdef",
                      database="postgresql://rindle:***@staging-db/rindle", app="app:media")
    plain = _register(redis, [rq_name])
    try:
        check = {c.id: c for c in (await run_doctor(media)).checks}["doctor.workers"]
    finally:
        for worker in (own, stray, plain):
            worker.register_death()

    assert (check.status, check.component) == ("warn", "queue")
    assert f"{own.name} on {own.hostname} (pid {own.pid}): this database" in check.summary
    assert (f"worker {stray.name} on {stray.hostname} (pid {stray.pid}) serves another "
            f"database, postgresql://rindle:***@staging-db/rindle (0123456789abcdef, this one "
            f"is {ours})") in check.summary
    assert f"worker {plain.name} on " in check.summary
    assert "does not say which database it serves" in check.summary
    assert check.fix is not None
    assert "stop the worker of the other database, or give the runtimes different rq queue " \
           "names" in check.fix and "rindle worker --app" in check.fix


@SQLITE
async def test_workers_of_this_database_alone_are_ok(make_media: MakeMedia, rq_name: str,
                                                     redis: Any) -> None:
    media = make_media(queue=RQQueue(REDIS_URL, name=rq_name), broadcast_url=REDIS_URL)
    async with media.connected():
        ours = await identity.fingerprint(media.store)
    assert ours is not None
    own = _register(redis, [ownership.owner_queue(rq_name, ours), rq_name], fingerprint=ours,
                    database="sqlite:///ours.db", app=None)
    try:
        report = await run_doctor(media)
    finally:
        own.register_death()
    check = {c.id: c for c in report.checks}["doctor.workers"]
    assert (check.status, check.summary, check.fix) == (
        "ok", f"1 rq worker on {rq_name!r}: {own.name} on {own.hostname} (pid {own.pid}): "
              "this database", None)
    # Only an rq runtime has the check: the inline queue's report keeps its checks.
    inline = await run_doctor(make_media())
    assert "doctor.workers" not in {c.id for c in inline.checks}


@SQLITE
async def test_a_worker_without_a_recent_heartbeat_is_reported_dead(
        make_media: MakeMedia, rq_name: str, redis: Any) -> None:
    from datetime import UTC, datetime, timedelta

    media = make_media(queue=RQQueue(REDIS_URL, name=rq_name), broadcast_url=REDIS_URL)
    async with media.connected():
        ours = await identity.fingerprint(media.store)
    assert ours is not None
    dead = _register(redis, [ownership.owner_queue(rq_name, ours), rq_name], fingerprint=ours,
                     database="sqlite:///ours.db", app=None)
    # Killed with -9 ten minutes ago: its entry lingers, its heartbeat stopped.
    then = datetime.now(UTC) - timedelta(minutes=10)
    redis.hset(dead.key, "last_heartbeat", then.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    try:
        check = {c.id: c for c in (await run_doctor(media)).checks}["doctor.workers"]
    finally:
        dead.register_death()
    assert check.status == "warn", check.summary
    assert f"worker {dead.name} on {dead.hostname} (pid {dead.pid}) has not sent a heartbeat " \
           "for" in check.summary and "probably dead" in check.summary
    assert check.fix is not None and "restart the worker" in check.fix


@SQLITE
async def test_status_counts_the_jobs_another_databases_worker_took(
        make_media: MakeMedia, rq_name: str, redis: Any) -> None:
    media = make_media(queue=RQQueue(REDIS_URL, name=rq_name), broadcast_url=REDIS_URL)
    async with media.connected():
        ours = await identity.fingerprint(media.store)
        assert ours is not None
        taker = ownership.Taker(fingerprint="0123456789abcdef", database="postgresql://x/stg",
                                worker="stray-1", where="stg-host:4242")
        key = ownership.record_key(ours)
        try:
            assert (await media.runtime_status())["healthy"] is True
            for n in range(3):
                ownership.record_taken(redis, ours, f"entry-{n}", taker, "fingerprint")
            report = await media.runtime_status(limit=1)
            assert 0 < redis.ttl(key) <= ownership.RECORD_TTL  # it fades after a day
        finally:
            redis.delete(key)
        assert (await media.runtime_status())["healthy"] is True  # the record is gone

    [finding] = report["outbox"]["findings"]
    assert (finding["class"], finding["count"]) == ("foreign_worker", 3)
    assert finding["oldest_age_seconds"] >= 0
    [sample] = finding["samples"]
    assert {k: sample[k] for k in ("job_id", "count", "worker", "where", "fingerprint",
                                   "database")} == {
        "job_id": "entry-2", "count": 3, "worker": "stray-1", "where": "stg-host:4242",
        "fingerprint": "0123456789abcdef", "database": "postgresql://x/stg"}
    assert "3 job(s) taken by worker stray-1 on stg-host:4242" in sample["error"]
    assert report["healthy"] is False
    [advice] = report["recommendations"]
    assert advice["class"] == "foreign_worker"
    assert advice["how"].startswith("stop the worker of the other database, or give the "
                                    "runtimes different rq queue names")
