"""run_ffmpeg against the real ffmpeg: progress, cancellation, timeouts, failures, clean-up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rindle.errors import RindleError
from rindle.processing.ffmpeg import input_args, run_ffmpeg
from rindle.processing.workspace import JobContext
from tests.support.clips import children_named, needs_ffmpeg, state

pytestmark = needs_ffmpeg

#: An endless source encoded as fast as the machine can: runs until stopped.
ENDLESS = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-c:v", "libx264",
           "-preset", "ultrafast", "-f", "null", "-"]


class Switch:
    """A Monitor whose cancellation is switched on by the test."""

    def __init__(self) -> None:
        self.on = False
        self.percents: list[float] = []

    async def cancelled(self) -> bool:
        return self.on

    async def progress(self, percent: float) -> None:
        self.percents.append(percent)


async def wait_for_child(name: str = "ffmpeg", within: float = 5.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := children_named(os.getpid(), name):
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {name} child started")


async def test_progress_increases_and_ends_at_100(tmp_path: Path) -> None:
    published: list[float] = []

    async def publish(percent: float) -> None:
        published.append(percent)

    async def never() -> bool:
        return False

    context = JobContext(tmp_path, max_pixels=None, cancelled=never, publish=publish)
    await run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=4",
                      "-c:v", "libx264", "-preset", "veryfast", "-f", "mp4", "-y",
                      "file:out.mp4"], cwd=tmp_path, context=context, duration=4.0)
    assert (tmp_path / "out.mp4").stat().st_size > 0  # relative names are in cwd
    assert len(published) >= 2, published
    assert published == sorted(published) and len(set(published)) == len(published)
    assert published[-1] == 100.0 and any(0 < p < 100 for p in published), published


async def test_cancellation_kills_ffmpeg_and_keeps_the_scratch(tmp_path: Path) -> None:
    switch = Switch()
    partial = tmp_path / "partial.mp4"
    task = asyncio.create_task(run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-c:v", "libx264", "-preset",
         "ultrafast", "-y", f"file:{partial}"], cwd=tmp_path, context=switch, duration=60.0))
    pid = await wait_for_child()
    await asyncio.sleep(0.7)
    switch.on = True
    started = time.monotonic()
    with pytest.raises(RindleError) as info:
        await task
    assert time.monotonic() - started < 2.0
    assert info.value.code == "processing_cancelled"
    assert state(pid) is None  # killed and reaped: not even a zombie
    assert children_named(os.getpid(), "ffmpeg") == []
    assert tmp_path.is_dir() and partial.exists()  # the pipeline removes the scratch


async def test_a_timeout_kills_ffmpeg(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(RindleError) as info:
        await run_ffmpeg(ENDLESS, cwd=tmp_path, timeout=0.6)
    assert info.value.code == "processing_timeout"
    assert time.monotonic() - started < 2.0
    assert children_named(os.getpid(), "ffmpeg") == []


async def test_a_cancelled_task_leaves_no_ffmpeg(tmp_path: Path) -> None:
    task = asyncio.create_task(run_ffmpeg(ENDLESS, cwd=tmp_path))
    pid = await wait_for_child()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state(pid) is None


async def test_a_failure_carries_the_last_lines_of_stderr(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-video.mp4"
    bogus.write_bytes(b"\x00" * 1000)
    with pytest.raises(RindleError) as info:
        await run_ffmpeg([*input_args(bogus), "-f", "null", "-"], cwd=tmp_path)
    error = info.value
    assert error.code == "ffmpeg_failed" and not error.retryable
    assert "not-a-video.mp4" in error.message and str(tmp_path) not in error.message
    assert "Invalid data" in error.message


async def test_a_lot_of_stderr_never_blocks_ffmpeg(tmp_path: Path) -> None:
    # Every frame logs a line at info level: far more than a pipe buffer holds.
    lines = await run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25:duration=40",
                              "-vf", "showinfo", "-f", "null", "-"], cwd=tmp_path,
                             timeout=30, loglevel="info")
    assert len(lines) == 64


def test_a_killed_worker_leaves_no_orphan_ffmpeg(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a worker killed with SIGKILL runs no clean-up, yet its ffmpeg dies."""
    script = ("import asyncio, pathlib\n"
              "from rindle.processing.ffmpeg import run_ffmpeg\n"
              f"asyncio.run(run_ffmpeg({ENDLESS!r}, cwd=pathlib.Path({str(tmp_path)!r})))\n")
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 10
        while not (found := children_named(worker.pid, "ffmpeg")):
            assert time.monotonic() < deadline and worker.poll() is None, "ffmpeg never started"
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(5)
        deadline = time.monotonic() + 2
        while state(found[0]) not in (None, "Z"):  # a zombie of init's is dead
            assert time.monotonic() < deadline, "ffmpeg outlived its worker"
            time.sleep(0.05)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
