"""The rq backend with the real Redis and a real worker process, on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rindle import Rindle
from tests.conftest import REDIS_URL, LiveServer
from tests.support.images import png


def _worker(env: dict[str, str], log: Path, *options: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rindle.cli", "worker", "--app", "tests.support.rq_app:media",
         *options],
        env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2], start_new_session=True,
    )


async def _wait_state(media: Rindle, asset_id: str, state: str, timeout: float = 30) -> None:
    for _ in range(int(timeout * 10)):
        if (await media.asset(asset_id)).state == state:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"asset {asset_id} is {(await media.asset(asset_id)).state}, "
                         f"not {state}")


@pytest.mark.parametrize("options", [(), ("--fork",)], ids=["in-process", "fork"])
async def test_five_call_flow_on_postgres_with_rq_workers(rq_env: dict[str, str],
                                                          tmp_path: Path,
                                                          options: tuple[str, ...]) -> None:
    from tests.support import rq_app

    media = rq_app.build()
    data = png(50, 40)
    worker = _worker(rq_env, tmp_path / "worker.log", *options)
    try:
        from starlette.applications import Starlette
        from starlette.routing import Mount

        app = Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)
        async with LiveServer(app) as srv, httpx.AsyncClient(base_url=srv.url) as client:
            r = await client.post("/rindle/uploads", json={
                "profile": "image", "filename": "a.png", "content_type": "image/png",
                "byte_size": len(data)})
            body = r.json()
            up = body["upload"]
            assert (await client.put(up["url"], content=data,
                                     headers=up["headers"])).status_code == 200
            events: list[str] = []

            async def listen() -> None:
                async for event in media.live.subscribe("asset", body["asset_id"]):
                    events.append(event.name if event.name != "state_change"
                                  else f"{event.data['entity']}:{event.data['to']}")
                    if event.name == "variant_ready":
                        return

            listener = asyncio.create_task(listen())
            await asyncio.sleep(0.2)
            done = await client.post(f"/rindle/uploads/{body['session_id']}/complete")
            assert done.status_code == 200
            # Promotion and the variant job both run in the worker process; their events
            # reach this process through Redis.
            await asyncio.wait_for(listener, 30)
            assert "asset:promoting" in events and "variant:ready" in events
            assert events[-1] == "variant_ready"
            await _wait_state(media, body["asset_id"], "ready")
            await media.attach(body["asset_id"], ("User", 1), "avatar")
            url = await media.url("image", body["asset_id"])
            got = await client.get(f"{srv.url}{url}")
            assert got.content == data
            [variant] = await media.repo.list_variants(body["asset_id"])
            assert variant.state == "ready"
            # Built by the worker (in its own process, or in a work horse it forked), not in
            # this process.
            assert variant.storage_key and f"-{os.getpid()}." not in variant.storage_key
            runs = await media.repo.runs_for_asset(body["asset_id"])
            assert [r.worker.rsplit(":", 1)[1] for r in runs] == [str(worker.pid)]
            entries = await media.repo.list_outbox()
            assert {e.kind for e in entries} == {"promote_asset", "process_variants",
                                                 "purge_upload"}
            # The staging key is cleared once the upload URL has expired, not before.
            assert all(e.state == ("pending" if e.kind == "purge_upload" else "done")
                       for e in entries)
    finally:
        worker.terminate()
        worker.wait(10)
    log = (tmp_path / "worker.log").read_text()
    assert up["url"].rsplit("/", 1)[1] not in log


async def test_killing_a_worker_mid_job_loses_nothing(rq_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    """kill -9 of the worker (and its work horse) in the middle of a variant job: after a new
    worker starts and the stale-job window passes, the variant is ready and no row is left
    in processing."""
    import signal

    os.environ["RINDLE_TEST_SLEEP"] = "3"
    os.environ["RINDLE_TEST_STALE_AFTER"] = "2"
    env = {**rq_env, "RINDLE_TEST_SLEEP": "3", "RINDLE_TEST_STALE_AFTER": "2"}
    from tests.support import rq_app

    media = rq_app.build()
    log = tmp_path / "worker.log"
    first = _worker(env, log)
    second = None
    try:
        async with media.connected():
            asset = (await media.upload("slow", png(20, 20), filename="a.png")).asset
            for _ in range(300):
                row = await media.repo.get_variant(asset.id, "copy")
                if row is not None and row.state == "processing":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the variant job never started")
            # The job runs in the worker itself; its child (rq's scheduler, and with --fork
            # a work horse in its own session) is killed by parentage.
            children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(first.pid)],
                                      capture_output=True, text=True).stdout.split()
            for pid in [first.pid, *map(int, children)]:
                os.kill(pid, signal.SIGKILL)
            first.wait(10)
            await asyncio.sleep(3.5)  # the sleepy job would have finished by now: it didn't
            row = await media.repo.get_variant(asset.id, "copy")
            assert row is not None and row.state == "processing"
            second = _worker(env, log)
            # The web process's sweeper re-dispatches jobs nobody finished in time.
            for _ in range(200):
                await media.outbox.sweep()
                row = await media.repo.get_variant(asset.id, "copy")
                if row is not None and row.state == "ready":
                    break
                await asyncio.sleep(0.1)
            assert row is not None and row.state == "ready"
            await _wait_state(media, asset.id, "ready")
            runs = await media.repo.runs_for_asset(asset.id)
            assert "abandoned" in {r.state for r in runs}
            assert "running" not in {r.state for r in runs}
            assert [r.state for r in runs][-1] == "succeeded"
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
        os.environ.pop("RINDLE_TEST_SLEEP", None)
        os.environ.pop("RINDLE_TEST_STALE_AFTER", None)


async def test_a_job_past_its_timeout_leaves_the_worker_serving_the_next(
        rq_env: dict[str, str], tmp_path: Path) -> None:
    """rq's job timeout interrupts the shared event loop of a worker that does not fork: the
    job is cancelled there, and the next job runs on the same loop and connections."""
    import signal

    env = {**rq_env, "RINDLE_TEST_SLEEP": "30", "RINDLE_TEST_JOB_TIMEOUT": "4"}
    os.environ.update(env)
    from tests.support import rq_app

    media = rq_app.build()
    log = tmp_path / "worker.log"
    worker = _worker(env, log)
    try:
        async with media.connected():
            slow = (await media.upload("slow", png(20, 20), filename="s.png")).asset
            for _ in range(300):
                row = await media.repo.get_variant(slow.id, "copy")
                if row is not None and row.state == "processing":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the slow job never started")
            quick = (await media.upload("image", png(30, 20), filename="q.png")).asset
            await _wait_state(media, quick.id, "ready", timeout=20)
            assert worker.poll() is None
            row = await media.repo.get_variant(slow.id, "copy")
            assert row is not None and row.state != "ready"
        assert "JobTimeoutException" in log.read_text()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(20)
        for key in ("RINDLE_TEST_SLEEP", "RINDLE_TEST_JOB_TIMEOUT"):
            os.environ.pop(key, None)


def test_a_worker_started_while_the_database_is_down_connects_once_it_is_up(
        tmp_path: Path) -> None:
    """A failed connect before the first job must not leave the runtime counting itself
    connected: every later job would skip connecting and fail."""
    from rindle import LocalStorage
    from rindle.processing.jobs import prepare_worker
    from tests.conftest import SECRET, ImageProfile

    media = Rindle(database_url="postgresql://postgres@127.0.0.1:1/nowhere",
                   storages={"local": LocalStorage(root=tmp_path)}, profiles=[ImageProfile],
                   secret_keys=[SECRET], queue=f"{REDIS_URL}")
    assert prepare_worker(media) is None

    async def connect_again() -> None:
        async with media.connected(start_queue=False):
            pass

    # It really tries again (and fails again), instead of believing it is connected.
    with pytest.raises(Exception, match="cannot connect to the database"):
        asyncio.run(connect_again())
    assert not media.store.connected


async def test_a_silent_redis_fails_an_enqueue_instead_of_hanging_it() -> None:
    import socket

    from redis.exceptions import TimeoutError as RedisTimeout

    from rindle.processing.queue import RQQueue

    # A server that accepts connections and never answers, like a host dropping packets.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        queue = RQQueue(f"redis://127.0.0.1:{server.getsockname()[1]}/0")
        queue.socket_timeout = 0.5
        # Only a socket timeout raises RedisTimeout; the guard stops a hung test, nothing more.
        async with asyncio.timeout(10):
            with pytest.raises(RedisTimeout):
                await asyncio.to_thread(lambda: queue.rq_queue().connection.ping())
        # A worker's connection has no read timeout: it blocks in BLPOP by design.
        worker_side = RQQueue(queue.redis_url).rq_queue(for_worker=True)
        assert worker_side.connection.connection_pool.connection_kwargs["socket_timeout"] is None
    finally:
        server.close()
