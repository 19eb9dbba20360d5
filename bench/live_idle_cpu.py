#!/usr/bin/env python
"""Idle-subscriber CPU benchmark: what live subscriptions over Redis cost while nothing happens.

Run from the repository root (Redis must be running)::

    .venv/bin/python bench/live_idle_cpu.py             # 100 channels, 5 s idle, 3 runs
    .venv/bin/python bench/live_idle_cpu.py --quick     # 1 run each

This is a benchmark, not a test: it never asserts a number and exits 0 unless the harness
itself breaks. The test suite checks the behaviour (the reader waits in reads of
``poll_interval`` seconds, it does not spin); this script measures the CPU that costs.

Each contender subscribes to ``--channels`` channels (default 100) on ``--redis-url``,
proves every subscription live by publishing one message per channel and receiving it, then
sits idle for ``--seconds`` (default 5) while the process's CPU time (``time.process_time``:
every thread, user + system) is taken before and after.

* ``idle``: no Redis at all; the event loop sleeping (the floor).
* ``redis-py`` (the baseline): one ``redis.asyncio`` ``PubSub`` subscribed to every channel,
  read by one task in ``async for message in pubsub.listen()`` -- a read that blocks until
  Redis sends something.
* ``rindle``: ``rindle.live.hub.make_broadcast(url)`` (``BoundedBroadcast`` over
  ``RedisPubSubBackend``) with one subscriber per channel, each awaiting ``subscriber.get()``
  as an SSE stream does; the backend's reader waits ``poll_interval`` (1 s) per read and
  pings a quiet connection every ``health_check_interval`` (10 s).

Every (contender, run) is a fresh subprocess of this script (hidden ``--worker`` argument).
Reported: CPU milliseconds per idle second, as a ratio to ``redis-py`` and to ``idle`` measured
in the same run, and for Rindle how many reads its backend made while idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _harness import emit, run_child  # noqa: E402

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
DEFAULT_REDIS = os.environ.get("RINDLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

CONTENDERS: dict[str, str] = {
    "idle": "event loop alone (floor)",
    "redis-py": "redis-py PubSub.listen() (baseline)",
    "rindle": "Rindle BoundedBroadcast + RedisPubSubBackend",
}


async def _idle_cpu(seconds: float) -> float:
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    return time.process_time() - cpu


async def _redis_py(url: str, channels: list[str], seconds: float) -> dict[str, Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(*channels)
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def reader() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                seen.put_nowait(message["channel"].decode())

    task = asyncio.create_task(reader())
    try:
        for name in channels:
            await client.publish(name, "hello")
        got = {await asyncio.wait_for(seen.get(), 10) for _ in channels}
        assert got == set(channels), "not every subscription delivered"
        cpu = await _idle_cpu(seconds)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pubsub.aclose()
        await client.aclose()
    return {"cpu": cpu}


async def _rindle(url: str, channels: list[str], seconds: float) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from rindle.live.hub import make_broadcast

    broadcast = make_broadcast(url)
    backend: Any = broadcast._backend  # type: ignore[attr-defined]
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(broadcast)
        subscribers = [await stack.enter_async_context(broadcast.subscribe(name))
                       for name in channels]
        for name in channels:
            await broadcast.publish(name, "hello")
        for sub in subscribers:
            await asyncio.wait_for(sub.get(), 10)
        waiting = [asyncio.create_task(sub.get()) for sub in subscribers]  # as SSE streams do
        reads = 0
        pubsub = getattr(backend, "_pubsub", None)
        read = getattr(pubsub, "get_message", None)
        if read is not None:
            async def counted(*args: Any, **kwargs: Any) -> Any:
                nonlocal reads
                reads += 1
                return await read(*args, **kwargs)

            pubsub.get_message = counted
        try:
            cpu = await _idle_cpu(seconds)
            idle_reads = reads  # not the UNSUBSCRIBE replies read while leaving
        finally:
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
    return {"cpu": cpu, "reads": idle_reads if read is not None else None,
            "poll_interval": getattr(backend, "poll_interval", None)}


async def _worker(name: str, url: str, count: int, seconds: float) -> dict[str, Any]:
    channels = [f"rindle-bench:{uuid.uuid4().hex[:8]}:{i}" for i in range(count)]
    if name == "idle":
        return {"cpu": await _idle_cpu(seconds)}
    if name == "redis-py":
        return await _redis_py(url, channels, seconds)
    return await _rindle(url, channels, seconds)


def run_worker(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_worker(args.worker, args.redis_url, args.channels, args.seconds))
    except Exception as exc:
        import traceback

        traceback.print_exc()
        emit({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    emit({**result, "seconds": args.seconds})
    return 0


def _child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    return run_child(HERE, ["--worker", name, "--redis-url", args.redis_url, "--channels",
                            str(args.channels), "--seconds", str(args.seconds)],
                     args.seconds + 60)


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def report(contenders: list[str], results: dict[str, list[dict[str, Any]]],
           args: argparse.Namespace) -> None:
    per_s = {c: statistics.median([r["cpu"] / r["seconds"] for r in results[c]
                                   if "error" not in r])
             for c in contenders if any("error" not in r for r in results[c])}
    base, floor = per_s.get("redis-py"), per_s.get("idle")
    headers = ["contender", "CPU ms / idle s", "vs redis-py", "vs idle", "reads while idle",
               "runs"]
    rows = []
    for c in contenders:
        ok = [r for r in results[c] if "error" not in r]
        if c not in per_s:
            rows.append([CONTENDERS[c], "FAILED", "-", "-", "-", f"0/{len(results[c])}"])
            continue
        v = per_s[c]
        reads = "-"
        if ok[0].get("reads") is not None:
            reads = (f"{statistics.median([r['reads'] for r in ok]):.0f} "
                     f"(poll {ok[0]['poll_interval']:g} s)")
        rows.append([CONTENDERS[c], f"{v * 1000:.3f}",
                     _ratio(v / base if base else None), _ratio(v / floor if floor else None),
                     reads, f"{len(ok)}/{len(results[c])}"])
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                     for i, h in enumerate(headers))
    print()
    print(f"process CPU while {args.channels} subscriptions sit idle for {args.seconds:g} s "
          "(median of the runs)")
    print("  " + line)
    print("  " + "-" * len(line))
    for cells in rows:
        print("  " + "  ".join(str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i])
                               for i, v in enumerate(cells)))
    for c in contenders:
        for i, r in enumerate(results[c]):
            if "error" in r:
                print(f"  WARNING: {c} run {i + 1} failed: {r['error']}")
                if r.get("stderr_tail"):
                    print("    " + r["stderr_tail"].replace("\n", "\n    "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU of idle live subscriptions over Redis: "
                                     "Rindle's backend vs a blocking redis-py reader.")
    parser.add_argument("--quick", action="store_true", help="one run per contender")
    parser.add_argument("--runs", type=int, default=None, help="runs per contender (default 3)")
    parser.add_argument("--channels", type=int, default=100, help="subscribed channels")
    parser.add_argument("--seconds", type=float, default=5.0, help="idle window, s")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help=f"default {DEFAULT_REDIS}")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)

    runs = args.runs or (1 if args.quick else 3)
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for c in contenders:
        if c not in CONTENDERS:
            parser.error(f"unknown contender {c!r}; choose from {', '.join(CONTENDERS)}")
    print("Rindle idle-subscriber CPU benchmark")
    print(f"  python {platform.python_version()} on {platform.machine()}; Redis at "
          f"{args.redis_url.rpartition('@')[2]}; {runs} run(s) per contender, each a fresh "
          "process")
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for rep in range(runs):
        for c in contenders:  # interleaved, so drift hits every contender alike
            r = _child(c, args)
            results[c].append(r)
            msg = (f"FAILED: {r['error']}" if "error" in r else
                   f"{r['cpu'] * 1000:.1f} ms CPU in {r['seconds']:g} s")
            print(f"  {c} run {rep + 1}/{runs}: {msg}", flush=True)
    report(contenders, results, args)
    print()
    print("CPU = time.process_time() of the whole process (all threads, user + system) across "
          "the idle window,\nafter every subscription was proven live; reads = the Rindle "
          "backend's get_message calls in that window.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
