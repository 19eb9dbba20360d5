"""One runner for the ffmpeg and ffprobe subprocesses of the audio/video processors.

Every process is started from an argv list (never a shell) in a session of its own, so one
``killpg`` ends it and anything it started, and with ``PR_SET_PDEATHSIG=SIGKILL`` on Linux,
so it dies with the worker that started it. ``run_ffmpeg`` adds ``-nostdin -progress pipe:1
-nostats``, turns ffmpeg's progress lines into ``context.progress`` percentages, checks
``context.cancelled()`` twice a second, enforces a timeout, reads stderr as it comes (a full
pipe would stall ffmpeg) and always reaps the process, whatever happens to the task.

Inputs are opened with ``input_args(path)``: the ``file:`` protocol only, and only the
demuxers in ``DEMUXERS``, so a playlist or a concat script posing as a video can't make
ffmpeg read other files or URLs.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import shutil
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Protocol

from ..errors import RindleError

__all__ = ["DEMUXERS", "Monitor", "binary", "input_args", "kill", "run_ffmpeg", "spawn"]

#: The demuxers an original may be read with (ffmpeg's names; the mov demuxer is
#: "mov,mp4,m4a,3gp,3g2,mj2" and matches "mov"). hls, concat, image2, tee and the like are
#: not here: they open further files or URLs named inside the file.
DEMUXERS = ("mov", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "ogg", "mp3", "wav",
            "flac", "aac", "aiff", "caf", "w64", "asf", "amr", "ac3", "eac3")

#: How many lines of stderr are kept; the error message shows the last ``_ERROR_LINES``.
_TAIL_LINES = 64
_ERROR_LINES = 20
_POLL = 0.5  # seconds between cancellation checks
_STATS_PERIOD = 0.25  # seconds between ffmpeg's progress reports (JobContext throttles them)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Monitor(Protocol):
    """What ``run_ffmpeg`` asks of the job: a processor's ``Context`` is one."""

    async def cancelled(self) -> bool: ...

    async def progress(self, percent: float) -> None: ...


def binary(name: str) -> str:
    """The path of ``ffmpeg`` or ``ffprobe`` on ``PATH``; ``ffmpeg_missing`` when absent."""
    found = shutil.which(name)
    if found is None:
        raise RindleError(f"{name} is not installed or not on PATH; install ffmpeg "
                          "(Debian: apt-get install ffmpeg)", code="ffmpeg_missing")
    return found


def input_args(path: str | os.PathLike[str], *,
               demuxers: Sequence[str] = DEMUXERS) -> list[str]:
    """The arguments that open ``path`` as an input: the file protocol only, the given
    demuxers only, and the name given as ``file:<absolute path>`` (a name starting with
    ``-`` or holding ``:`` is never read as an option or a protocol)."""
    return ["-protocol_whitelist", "file", "-format_whitelist", ",".join(demuxers),
            "-i", "file:" + str(Path(path).resolve())]


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None
    return prctl


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGKILL when its parent dies.

    A worker killed with ``kill -9`` (an OOM kill, a deploy) runs no ``finally``: without
    this, its ffmpeg would go on transcoding as an orphan, holding CPU and scratch space,
    and a retry on another worker would run it twice. The parent's pid is checked after
    ``prctl``, in case it died between ``fork`` and the call.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def setup() -> None:  # runs in the child between fork and exec: no allocation, no locks
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return setup


async def spawn(argv: Sequence[str], *, cwd: Path | None = None) -> asyncio.subprocess.Process:
    """Start ``argv`` (its first item from ``binary()``) with stdout and stderr piped, no
    stdin, in a new session, dying with this process."""
    return await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=cwd, start_new_session=True,
        preexec_fn=_die_with_parent())


def kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process's whole group (its session), if it has not been reaped yet."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it exited and was reaped meanwhile
            pass


async def reap(proc: asyncio.subprocess.Process) -> None:
    """Kill the group if it still runs and wait for the process (shielded from
    cancellation, so no zombie is left behind by a cancelled task)."""
    kill(proc)
    await asyncio.shield(proc.wait())


async def _lines(stream: asyncio.StreamReader | None) -> AsyncIterator[str]:
    """The stream's lines (split on ``\\n`` and ``\\r``), however long, until EOF."""
    if stream is None:
        return
    pending = b""
    while chunk := await stream.read(65536):
        pending += chunk.replace(b"\r", b"\n")
        *complete, pending = pending.split(b"\n")
        pending = pending[-65536:]  # a line without end is not kept whole
        for line in complete:
            yield line.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


def clean(lines: Sequence[str], argv: Sequence[str]) -> str:
    """Error lines for a message: no indented lines (ffmpeg's dumps of streams and their
    tags), and each file named by its name alone, not its path."""
    text = "\n".join(line for line in lines if line.strip() and not line[:1].isspace())
    for arg in argv:
        if arg.startswith("file:") and len(arg) > 5:
            path = arg[5:]
            text = text.replace(arg, Path(path).name).replace(path, Path(path).name)
    return text


async def run_ffmpeg(args: Sequence[str], *, cwd: Path, context: Monitor | None = None,
                     duration: float | None = None, timeout: float | None = None,
                     loglevel: str = "error") -> list[str]:
    """Run ``ffmpeg <args>`` to the end; return the last lines of its stderr.

    ``duration`` (seconds of output expected) turns ffmpeg's ``out_time_us`` into percent
    for ``context.progress``; 100 is reported once ffmpeg exits cleanly. Raises
    ``processing_cancelled`` when ``context.cancelled()`` says so, ``processing_timeout``
    after ``timeout`` seconds and ``ffmpeg_failed`` (with stderr's last lines) on a
    non-zero exit; in each case the process group is killed and the process reaped first.
    ``loglevel`` is ffmpeg's ``-v`` (``info`` for filters that report there, like
    ``loudnorm``).
    """
    argv = [binary("ffmpeg"), "-hide_banner", "-nostdin", "-v", loglevel, "-nostats",
            "-progress", "pipe:1", "-stats_period", str(_STATS_PERIOD), *args]
    if context is not None and await context.cancelled():
        # A job of several runs (two loudness passes, renditions then a strip) asks before
        # each: a cancel must not start another ffmpeg only to kill it at the first poll.
        raise RindleError("processing was cancelled; ffmpeg was not started",
                          code="processing_cancelled")
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    proc = await spawn(argv, cwd=cwd)
    readers: list[asyncio.Task[None]] = []
    try:
        async def read_progress() -> None:
            async for line in _lines(proc.stdout):
                key, _, value = line.partition("=")
                if key == "out_time_us" and context is not None and duration:
                    try:
                        done = int(value) / 1_000_000
                    except ValueError:  # "N/A" before the first frame
                        continue
                    await context.progress(max(0.0, min(99.9, 100 * done / duration)))

        async def read_stderr() -> None:
            async for line in _lines(proc.stderr):
                tail.append(line)

        readers = [asyncio.create_task(read_progress()), asyncio.create_task(read_stderr())]
        waiting = asyncio.ensure_future(proc.wait())
        while not waiting.done():
            await asyncio.wait({waiting, *readers}, timeout=_POLL,
                               return_when=asyncio.FIRST_EXCEPTION)
            if waiting.done():
                break
            for task in readers:  # context.progress raised: stop here
                if task.done() and task.exception() is not None:
                    await reap(proc)
                    task.result()
            if context is not None and await context.cancelled():
                await reap(proc)
                raise RindleError("processing was cancelled; ffmpeg was stopped",
                                  code="processing_cancelled")
            if deadline is not None and loop.time() >= deadline:
                await reap(proc)
                raise RindleError(f"ffmpeg ran longer than {timeout:g} s and was stopped",
                                  code="processing_timeout", timeout=timeout)
        await asyncio.gather(*readers)
        if proc.returncode != 0:
            detail = clean(list(tail)[-_ERROR_LINES:], argv)
            error = RindleError(f"ffmpeg failed (exit status {proc.returncode}): "
                                f"{detail or 'no message'}", code="ffmpeg_failed",
                                returncode=proc.returncode)
            # Killed by a signal we did not send (the OOM killer): another try may work.
            error.retryable = proc.returncode is not None and proc.returncode < 0
            raise error
        if context is not None and await context.cancelled():
            # The cancel came while ffmpeg ran but it finished before the next poll: the
            # caller asked for nothing, so nothing is handed back whatever the timing.
            raise RindleError("processing was cancelled; ffmpeg's output was discarded",
                              code="processing_cancelled")
        if context is not None and duration:
            await context.progress(100.0)
        return list(tail)
    finally:
        if proc.returncode is None:
            await reap(proc)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
