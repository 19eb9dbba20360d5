#!/usr/bin/env python
"""Event-loop stall benchmark: how long the loop cannot run while a large image is built.

Run from the repository root::

    .venv/bin/python bench/image_loop_stall.py            # 3 runs per contender, median
    .venv/bin/python bench/image_loop_stall.py --quick    # 1 run each

This is a benchmark, not a test: it never asserts a number and exits 0 unless the harness
itself breaks. The test suite checks the behaviour (no libvips operation starts on the loop's
thread, and the loop serves other tasks during a decode); this script measures the stalls an
async server would see.

The input is generated once with pyvips: a 24 MP JPEG (6000x4000, Q=90, a gradient plus seeded
``gaussnoise``). The work is one variant: fit to 3000 px wide, saved as WebP Q=80. While it
runs, a ticker task sleeps 10 ms at a time and records the time between its wake-ups; a gap
of g ms means the loop could not run anything else for about g - 10 ms.

* ``idle``: the ticker alone for 2 s; the floor of this machine.
* ``on-loop`` (the baseline): the same libvips work called directly in a coroutine, as a
  handler that calls pyvips without offloading would: ``Image.thumbnail`` + ``webpsave``.
* ``to-thread``: the same calls inside one ``asyncio.to_thread``: what offloading alone gives.
* ``rindle``: the real library: a ``Rindle`` runtime on SQLite + ``LocalStorage`` whose
  profile holds that variant, ``media.upload`` of the file then ``media.drain()`` until the
  variant is built, so content checks, checksum, promotion, the variant job and the stores
  are all inside the measured window.

Every (contender, run) is a fresh subprocess of this script (hidden ``--worker`` argument),
so libvips' caches and thread pools start cold for each. Reported: the wall time of the work,
the longest gap, the 99th-percentile gap and the number of gaps over 50 ms, with the longest
gap as a ratio to ``on-loop`` and to ``idle`` measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _harness import emit, run_child  # noqa: E402

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
WIDTH, HEIGHT, SOURCE_QUALITY, SEED = 6000, 4000, 90, 20240601
TARGET_WIDTH, QUALITY = 3000, 80
TICK = 0.010
IDLE_SECONDS = 2.0
SLOW_GAP = 0.050

CONTENDERS: dict[str, str] = {
    "idle": "idle loop (floor)",
    "on-loop": "pyvips on the loop (baseline)",
    "to-thread": "pyvips in asyncio.to_thread",
    "rindle": "Rindle upload + variant",
}


# --- measuring inside a child -----------------------------------------------------------


async def _measure(work: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run ``work`` while a ticker records the gaps between its 10 ms sleeps."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker is running before the work starts
    started = time.perf_counter()
    try:
        detail = await work()
    finally:
        seconds = time.perf_counter() - started
        stop.set()
        await task
    ordered = sorted(gaps)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else None
    return {"seconds": seconds, "ticks": len(gaps), "max_gap": max(gaps, default=None),
            "p99_gap": p99, "slow_gaps": sum(1 for g in gaps if g > SLOW_GAP),
            "detail": detail}


def _pyvips_variant(src: str, dst: str) -> tuple[int, int]:
    import pyvips

    image = pyvips.Image.thumbnail(src, TARGET_WIDTH, height=10_000_000, size="down")
    image.webpsave(dst, Q=QUALITY)
    return image.width, image.height


async def _rindle_variant(src: str, state: Path) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant

    class BenchProfile(Profile):
        name = "bench"
        storage = "local"
        allow_mime = ["image/jpeg"]
        max_bytes = 200 * 1024 * 1024
        max_pixels = 50_000_000
        variants = {"large": Variant(width=TARGET_WIDTH, format="webp", quality=QUALITY)}

    media = Rindle(database_url=f"sqlite:///{state}/bench.db",
                   storages={"local": LocalStorage(root=state / "files")},
                   profiles=[BenchProfile], secret_keys=["x" * 32], authorizer=AllowAll())
    await media.migrate()
    async with media.connected():
        async def work() -> dict[str, Any]:
            with open(src, "rb") as f:
                result = await media.upload(BenchProfile, f, filename="big.jpg",
                                            content_type="image/jpeg",
                                            byte_size=os.path.getsize(src))
            await media.drain(timeout=600)
            rows = await media.repo.list_variants(result.asset.id)
            asset = await media.asset(result.asset.id)
            return {"asset_state": asset.state,
                    "variants": {v.name: [v.state, v.width, v.height] for v in rows}}

        return await _measure(work)


async def _worker(name: str, src: str, state: Path) -> dict[str, Any]:
    if name == "rindle":
        return await _rindle_variant(src, state)
    if name == "idle":
        return await _measure(lambda: asyncio.sleep(IDLE_SECONDS))
    dst = str(state / "out.webp")
    if name == "on-loop":
        async def on_loop() -> Any:
            return _pyvips_variant(src, dst)  # blocks the loop: the point of the baseline

        return await _measure(on_loop)
    return await _measure(lambda: asyncio.to_thread(_pyvips_variant, src, dst))


def run_worker(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_worker(args.worker, args.src, Path(args.state)))
    except Exception as exc:
        import traceback

        traceback.print_exc()
        emit({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    emit(result)
    return 0


# --- the parent ---------------------------------------------------------------------------


def generate_input(path: Path) -> None:
    import pyvips

    xy = pyvips.Image.xyz(WIDTH, HEIGHT)
    gx = xy[0] * (255.0 / (WIDTH - 1))
    gy = xy[1] * (255.0 / (HEIGHT - 1))
    smooth = gx.bandjoin([gy, 255.0 - (gx + gy) * 0.5])
    noise = pyvips.Image.gaussnoise(WIDTH, HEIGHT, sigma=8.0, mean=0.0, seed=SEED)
    noise = noise.bandjoin([pyvips.Image.gaussnoise(WIDTH, HEIGHT, sigma=8.0, mean=0.0,
                                                    seed=SEED + b) for b in (1, 2)])
    (smooth + noise).cast("uchar").copy(interpretation="srgb").jpegsave(str(path),
                                                                       Q=SOURCE_QUALITY)


def _child(name: str, src: Path, state: Path, timeout: float) -> dict[str, Any]:
    return run_child(HERE, ["--worker", name, "--src", str(src), "--state", str(state)],
                     timeout)


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.1f}"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def report(contenders: list[str], results: dict[str, list[dict[str, Any]]]) -> None:
    stats: dict[str, dict[str, float]] = {}
    for c in contenders:
        ok = [r for r in results[c] if "error" not in r and r["max_gap"] is not None]
        if ok:
            stats[c] = {k: statistics.median([r[k] for r in ok])
                        for k in ("seconds", "ticks", "max_gap", "p99_gap", "slow_gaps")}
            stats[c]["runs"] = len(ok)
    base = stats.get("on-loop", {}).get("max_gap")
    floor = stats.get("idle", {}).get("max_gap")
    headers = ["contender", "work s", "ticks", "max gap ms", "p99 gap ms",
               f"gaps > {SLOW_GAP * 1000:.0f} ms", "max vs on-loop", "max vs idle", "runs"]
    rows = []
    for c in contenders:
        if c not in stats:
            rows.append([CONTENDERS[c], "FAILED", *["-"] * 6, f"0/{len(results[c])}"])
            continue
        s = stats[c]
        rows.append([CONTENDERS[c], f"{s['seconds']:.2f}", f"{s['ticks']:.0f}",
                     _ms(s["max_gap"]), _ms(s["p99_gap"]), f"{s['slow_gaps']:.0f}",
                     _ratio(s["max_gap"] / base if base else None),
                     _ratio(s["max_gap"] / floor if floor else None),
                     f"{s['runs']:.0f}/{len(results[c])}"])
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                     for i, h in enumerate(headers))
    print()
    print(f"event-loop gaps (ticker sleeping {TICK * 1000:.0f} ms) while a {WIDTH}x{HEIGHT} "
          f"JPEG becomes a {TARGET_WIDTH}px WebP (medians of the runs)")
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
            elif c == "rindle" and i == 0:
                print(f"  rindle: {r['detail']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Event-loop stalls while an image variant "
                                     "is built: pyvips on the loop vs offloaded vs Rindle.")
    parser.add_argument("--quick", action="store_true", help="one run per contender")
    parser.add_argument("--runs", type=int, default=None, help="runs per contender (default 3)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--timeout", type=float, default=900, help="per-process timeout, s")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)

    runs = args.runs or (1 if args.quick else 3)
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for c in contenders:
        if c not in CONTENDERS:
            parser.error(f"unknown contender {c!r}; choose from {', '.join(CONTENDERS)}")
    import pyvips

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    print("Rindle event-loop stall benchmark")
    print(f"  python {platform.python_version()} on {platform.machine()}, usable cpus={cpus}, "
          f"libvips {'.'.join(str(pyvips.version(i)) for i in range(3))}; {runs} run(s) per "
          "contender, each a fresh process")
    work = Path(tempfile.mkdtemp(prefix="rindle-bench-stall-"))
    try:
        src = work / "src.jpg"
        started = time.perf_counter()
        generate_input(src)
        print(f"  generated {src.name}: {WIDTH}x{HEIGHT} JPEG Q={SOURCE_QUALITY}, "
              f"{src.stat().st_size / 2**20:.1f} MiB in {time.perf_counter() - started:.1f} s",
              flush=True)
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        for rep in range(runs):
            for c in contenders:  # interleaved, so drift hits every contender alike
                state = work / f"{c}-{rep}"
                state.mkdir()
                r = _child(c, src, state, args.timeout)
                shutil.rmtree(state, ignore_errors=True)
                results[c].append(r)
                msg = (f"FAILED: {r['error']}" if "error" in r else
                       f"{r['seconds']:.2f} s, max gap {_ms(r['max_gap'])} ms")
                print(f"  {c} run {rep + 1}/{runs}: {msg}", flush=True)
        report(contenders, results)
        print()
        print("gap = time between two wake-ups of a task that sleeps 10 ms; the loop could run "
              "nothing else for\nabout gap - 10 ms. work s = wall time of the measured work "
              "(for Rindle: upload, checks, promotion\nand the variant job).")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
