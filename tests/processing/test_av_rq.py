"""Transcodes in an rq worker process: a cancel from the web process stops its ffmpeg within
2 s, and kill -9 of the worker mid-transcode leaves no orphan ffmpeg (it dies with its
parent) while the variants still reach ready once a new worker takes the job over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rindle import Rindle
from tests.processing.test_rq import _worker
from tests.support.clips import Clips, children_named, clips, state

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return clips(tmp_path_factory)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """Stop a worker and everything in its session (rq's scheduler child outlives a worker
    killed alone), by force if a warm shutdown lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(10)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)


async def _transcoding(worker: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while not (found := children_named(worker, "ffmpeg")):
        assert time.monotonic() < deadline, "the worker never started ffmpeg"
        await asyncio.sleep(0.02)
    return found


async def _gone(pids: list[int], within: float) -> None:
    started = time.monotonic()
    while any(state(pid) not in (None, "Z") for pid in pids):
        assert time.monotonic() - started < within, f"ffmpeg {pids} outlived {within} s"
        await asyncio.sleep(0.02)


async def test_a_cancel_stops_the_workers_ffmpeg(rq_env: dict[str, str], tmp_path: Path,
                                                 made: Clips,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from rindle.processing.workspace import SCRATCH_PREFIX
    from tests.support import rq_app

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("RINDLE_TEST_SCRATCH", str(scratch))
    media: Rindle = rq_app.build()
    worker = _worker({**rq_env, "RINDLE_TEST_SCRATCH": str(scratch)}, tmp_path / "worker.log")
    try:
        async with media.connected():
            asset = (await media.upload("lesson", made.big.read_bytes(),
                                        filename="big.mp4")).asset
            running = await _transcoding(worker.pid)
            assert list(scratch.glob(f"{SCRATCH_PREFIX}*"))  # the job works in there
            cancelled = await media.cancel_processing(asset.id)
            assert cancelled
            await _gone(running, 2)
            # Nothing else started since, and the killed one is reaped (no zombie stays).
            deadline = time.monotonic() + 2
            while left := children_named(worker.pid, "ffmpeg"):
                assert all(state(pid) == "Z" for pid in left), left
                assert time.monotonic() < deadline, f"ffmpeg {left} is never reaped"
                await asyncio.sleep(0.02)
            assert worker.poll() is None  # the worker goes on serving
            for _ in range(100):
                rows = {v.name: v.state for v in await media.repo.list_variants(asset.id)}
                if all(rows[name] == "cancelled" for name in cancelled):
                    break
                await asyncio.sleep(0.1)
            assert all(rows[name] == "cancelled" for name in cancelled), rows
            # The worker's job removed its scratch directory (the original's copy included).
            for _ in range(100):
                if not list(scratch.glob(f"{SCRATCH_PREFIX}*")):
                    break
                await asyncio.sleep(0.1)
            assert list(scratch.glob(f"{SCRATCH_PREFIX}*")) == []
    finally:
        _stop(worker)


async def test_a_killed_worker_leaves_no_orphan_and_the_job_is_taken_over(
        rq_env: dict[str, str], tmp_path: Path, made: Clips,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINDLE_TEST_STALE_AFTER", "2")
    env = {**rq_env, "RINDLE_TEST_STALE_AFTER": "2"}
    from tests.support import rq_app

    media: Rindle = rq_app.build()
    log = tmp_path / "worker.log"
    first = _worker(env, log)
    second = None
    try:
        async with media.connected():
            asset = (await media.upload("lesson", made.big.read_bytes(),
                                        filename="big.mp4")).asset
            running = await _transcoding(first.pid)
            os.kill(first.pid, signal.SIGKILL)  # the worker alone: ffmpeg must follow it
            first.wait(10)
            await _gone(running, 2)
            second = _worker(env, log)
            for _ in range(600):
                await media.outbox.sweep()  # re-sends the job nobody finished in time
                if (await media.asset(asset.id)).state == "ready":
                    break
                await asyncio.sleep(0.1)
            rows = {v.name: v.state for v in await media.repo.list_variants(asset.id)}
            assert set(rows.values()) == {"ready"}, rows
            runs = await media.repo.runs_for_asset(asset.id)
            assert "abandoned" in {r.state for r in runs}
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc)
