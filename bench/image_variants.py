#!/usr/bin/env python
"""Image-variant benchmark: raw pyvips vs one-decode pyvips vs Pillow vs Rindle's real pipeline.

Run from the repository root::

    .venv/bin/python bench/image_variants.py            # 3 runs per contender, median
    .venv/bin/python bench/image_variants.py --quick    # 1 run each

This is a benchmark, not a test: it never asserts timings and always exits 0 unless the
harness itself breaks. The targets are printed as a reminder next to the measured ratios.

Inputs are generated once, deterministically, with pyvips (a smooth gradient plus seeded
``gaussnoise`` so the encoded sizes are realistic): a 24 MP JPEG (6000x4000, Q=90), a 100 MP
JPEG (12500x8000, Q=90) and a 24 MP RGB PNG (6000x4000). For each image every contender
builds the same four files -- "thumb" (fit in 128x128) and "large" (fit in 1024x1024), each
as JPEG Q=80 and WebP Q=80:

* ``pyvips``: ``pyvips.Image.thumbnail(path, size, height=size, size="down")`` once per size
  from the original file, rendered to memory once (a sequential thumbnail cannot be saved
  twice: the second save fails with "out of order read"), saved as JPEG (optimize_coding,
  like Rindle and Pillow) and WebP with metadata stripped. Two decodes of the original.
* ``one-decode``: the best hand-written pyvips pipeline for the same four files, doing what
  Rindle does minus the bookkeeping: ONE decode of the original,
  ``pyvips.Image.thumbnail(path, 1024, height=1024, size="down", fail_on="error")``, rendered
  to memory (``copy_memory()``); "large" is that image, "thumb" is derived from it with
  ``thumbnail_image(128, height=128, size="down")`` (rendered to memory once, for its two
  saves). The four saves use Rindle's savers and options (JPEG Q=80 optimize_coding, WebP
  Q=80, metadata stripped) and run side by side on a pool of ``min(4, cpu_count)`` threads,
  the large ones first, as Rindle encodes. No header inspection, no placeholder, no
  storage, no database: the floor Rindle's real pipeline is held to.
* ``pillow``: ``Image.open`` + ``draft("RGB", (size, size))`` for JPEG, re-opening the file
  per size like independent jobs, ``thumbnail((size, size), LANCZOS)``, JPEG Q=80 optimize
  and WebP quality=80.
* ``rindle``: a ``Rindle`` runtime on SQLite + ``LocalStorage`` with a profile holding the
  four variants. The upload and promotion happen first, untimed, in a separate setup
  process; the timed process only builds the variants (storage reads and writes included)
  until all four variant rows are ``ready``.

Every (contender, image, run) is a fresh subprocess of this script (hidden ``--worker``
argument) so peak RSS (VmHWM) is per contender. The child prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _harness import emit, median, run_child  # noqa: E402

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent


def _child(argv: list[str], timeout: float) -> dict[str, Any]:
    """One contender in a child process of this script; a non-zero exit fails the run."""
    return run_child(HERE, argv, timeout, exit_code_is_error=True)

# key -> (label, width, height, format)
IMAGES: dict[str, tuple[str, int, int, str]] = {
    "jpeg24": ("24 MP JPEG", 6000, 4000, "jpeg"),
    "jpeg100": ("100 MP JPEG", 12500, 8000, "jpeg"),
    "png24": ("24 MP PNG", 6000, 4000, "png"),
}
SIZES: dict[str, int] = {"thumb": 128, "large": 1024}
FORMATS: dict[str, str] = {"jpeg": "jpg", "webp": "webp"}  # output format -> extension
QUALITY = 80
SOURCE_QUALITY = 90
NOISE_SIGMA = 8.0
SEED = 20240601

CONTENDERS: dict[str, str] = {
    "pyvips": "raw pyvips (independent)",
    "one-decode": "pyvips one decode (hand-written)",
    "pillow": "Pillow (draft + LANCZOS)",
    "rindle": "Rindle",
}

TARGET_TIME_VS_PYVIPS = 0.85
TARGET_RSS_VS_PYVIPS = 1.2
TARGET_TIME_VS_ONE_DECODE = 1.05

RINDLE_PATHS = ("requeue_variants", "process_variants", "schedule_variants", "process_variant")
VARIANT_NAMES = [f"{size}_{fmt}" for size in SIZES for fmt in FORMATS]


# --- measuring inside a child -----------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_rss_kib() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def _current_rss_kib() -> int | None:
    return _status_kib("VmRSS")


def _strip_kwargs(pyvips: Any) -> dict[str, Any]:
    # libvips 8.15 replaced strip=True with keep=VIPS_FOREIGN_KEEP_NONE (0).
    try:
        if "keep" in pyvips.Introspect.get("jpegsave").optional_input:
            return {"keep": 0}
    except Exception:
        pass
    return {"strip": True}


def _count_vips_ops(pyvips: Any) -> Counter[str]:
    """Count libvips operations started from Python (thumbnail, *load, *save...).

    Every pyvips call (``Image.thumbnail``, ``new_from_file``, ``jpegsave``...) goes through
    ``Operation.call``; wrapping it costs a dict update per call, nothing per pixel.
    """
    counts: Counter[str] = Counter()
    original = pyvips.Operation.call

    def call(operation_name: str, *args: Any, **kwargs: Any) -> Any:
        counts[operation_name] += 1
        return original(operation_name, *args, **kwargs)

    pyvips.Operation.call = staticmethod(call)
    return counts


def _interesting_ops(counts: Counter[str]) -> dict[str, int]:
    """thumbnail*, loaders and savers. ``new_from_file`` calls its loader by type name
    (``VipsForeignLoadPngFile``): such a load may read only the header, as a check does."""
    return {k: v for k, v in sorted(counts.items())
            if k.startswith("thumbnail") or "load" in k.lower() or "save" in k}


# --- contender 1: raw pyvips --------------------------------------------------------------------


def worker_pyvips(src: str, out: Path) -> dict[str, Any]:
    import pyvips

    strip = _strip_kwargs(pyvips)
    ops = _count_vips_ops(pyvips)
    rss_before = _current_rss_kib()
    cpu_started = time.process_time()
    started = time.perf_counter()
    for size_name, px in SIZES.items():
        # One decode per size; rendered to memory so both encoders can read it (a sequential
        # thumbnail pipeline can be evaluated only once).
        image = pyvips.Image.thumbnail(src, px, height=px, size="down").copy_memory()
        image.jpegsave(str(out / f"{size_name}.jpg"), Q=QUALITY, optimize_coding=True, **strip)
        image.webpsave(str(out / f"{size_name}.webp"), Q=QUALITY, **strip)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_kib": _peak_rss_kib(),
            "rss_before_kib": rss_before, "vips_ops": _interesting_ops(ops)}


# --- contender 2: one decode, by hand ----------------------------------------------------------


def worker_one_decode(src: str, out: Path) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import pyvips

    strip = _strip_kwargs(pyvips)
    ops = _count_vips_ops(pyvips)
    largest = max(SIZES.values())
    rss_before = _current_rss_kib()
    cpu_started = time.process_time()
    started = time.perf_counter()
    # One decode, shrink-on-load to the largest size, rendered to memory: every smaller size
    # and every save reads it from there.
    base = pyvips.Image.thumbnail(src, largest, height=largest, size="down",
                                  fail_on="error").copy_memory()
    images = {name: base if px == largest else
              base.thumbnail_image(px, height=px, size="down").copy_memory()
              for name, px in sorted(SIZES.items(), key=lambda item: -item[1])}

    def save(name: str, fmt: str) -> None:
        dst = str(out / f"{name}.{FORMATS[fmt]}")
        if fmt == "jpeg":
            images[name].jpegsave(dst, Q=QUALITY, optimize_coding=True, **strip)
        else:
            images[name].webpsave(dst, Q=QUALITY, **strip)

    jobs = [(name, fmt) for name in images for fmt in FORMATS]  # the large ones first
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        for future in [pool.submit(save, name, fmt) for name, fmt in jobs]:
            future.result()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_kib": _peak_rss_kib(),
            "rss_before_kib": rss_before, "vips_ops": _interesting_ops(ops)}


# --- contender 3: Pillow --------------------------------------------------------------------------


def worker_pillow(src: str, out: Path) -> dict[str, Any]:
    from PIL import Image

    lanczos = getattr(Image, "Resampling", Image).LANCZOS
    rss_before = _current_rss_kib()
    cpu_started = time.process_time()
    started = time.perf_counter()
    for size_name, px in SIZES.items():
        with Image.open(src) as opened:  # re-opened per size, like independent jobs
            if opened.format == "JPEG":
                opened.draft("RGB", (px, px))  # DCT scaling: decode at 1/2, 1/4 or 1/8
            img = opened if opened.mode == "RGB" else opened.convert("RGB")
            img.thumbnail((px, px), lanczos)
            img.save(out / f"{size_name}.jpg", "JPEG", quality=QUALITY, optimize=True)
            img.save(out / f"{size_name}.webp", "WEBP", quality=QUALITY)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    import PIL

    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_kib": _peak_rss_kib(),
            "rss_before_kib": rss_before, "pillow_version": PIL.__version__}


# --- contender 4: Rindle --------------------------------------------------------------------------


def _rindle_runtime(state: Path, *, with_variants: bool) -> tuple[Any, Any]:
    """A Rindle runtime on SQLite + LocalStorage under ``state``.

    Both the setup process (no variants: the upload is promoted to ``available`` and nothing
    is built) and the timed process (the four variants) name their profile ``bench``, so
    they share the asset rows.
    """
    sys.path.insert(0, str(REPO))
    from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant

    bench_variants = {}
    if with_variants:
        for size_name, px in SIZES.items():
            for fmt in FORMATS:
                bench_variants[f"{size_name}_{fmt}"] = Variant(
                    mode="fit", width=px, height=px, format=fmt, quality=QUALITY)

    class BenchProfile(Profile):
        name = "bench"
        storage = "local"
        allow_mime = ["image/jpeg", "image/png"]
        max_bytes = 200 * 1024 * 1024
        max_pixels = 200_000_000
        variants = bench_variants

    media = Rindle(
        database_url=f"sqlite:///{state}/bench.db",
        storages={"local": LocalStorage(root=f"{state}/files")},
        profiles=[BenchProfile],
        secret_keys=["x" * 32],
        authorizer=AllowAll(),
    )
    return media, BenchProfile


def _requeue_function(media: Any) -> tuple[Any, str] | None:
    """``media.requeue_variants(asset_id, force=True)``, else the repair module's function."""
    method = getattr(media, "requeue_variants", None)
    if method is not None:
        return method, "Rindle.requeue_variants"
    try:
        from rindle.processing import repair
    except ImportError:
        return None
    func = getattr(repair, "requeue_variants", None)
    if func is None:
        return None
    return (lambda asset_id, **kw: func(media, asset_id, **kw)), "repair.requeue_variants"


def detect_rindle_path() -> str:
    """Which API triggers the variant build, by what this checkout of Rindle offers.

    Order: requeue_variants(force=True) on an asset whose variants were built during the
    untimed setup (a method on Rindle or ``rindle.processing.repair.requeue_variants``);
    else ``pipeline.process_variants``; else ``pipeline.process_variant`` per name; else
    ``pipeline.schedule_variants`` (what promotion itself does).
    """
    sys.path.insert(0, str(REPO))
    from rindle import Rindle
    from rindle.processing import pipeline

    if hasattr(Rindle, "requeue_variants"):
        return "requeue_variants"
    try:
        from rindle.processing import repair
        if hasattr(repair, "requeue_variants"):
            return "requeue_variants"
    except ImportError:
        pass
    if hasattr(pipeline, "process_variants"):
        return "process_variants"
    if hasattr(pipeline, "process_variant"):
        return "process_variant"
    return "schedule_variants"


async def _rindle_setup(src: str, state: Path, rindle_path: str) -> dict[str, Any]:
    from rindle.model import migrate

    # requeue_variants needs built variants to requeue; every other path starts from an
    # asset that is available with no variant rows, so nothing is built here.
    media, profile = _rindle_runtime(state, with_variants=rindle_path == "requeue_variants")
    await asyncio.to_thread(migrate.upgrade, media.database_url)  # alembic runs its own loop
    mime = "image/png" if src.endswith(".png") else "image/jpeg"
    async with media.connected():
        with open(src, "rb") as f:
            result = await media.upload(profile, f, filename=os.path.basename(src),
                                        content_type=mime, byte_size=os.path.getsize(src))
        await media.drain(timeout=1800)
        asset = await media.asset(result.asset.id)
        rows = await media.repo.list_variants(asset.id)
    return {"asset_id": asset.id, "state": asset.state,
            "variants": {v.name: v.state for v in rows}}


async def _plan_and_queue(media: Any, profile: Any, asset: Any) -> None:
    """schedule_variants without the outbox: rows planned and queued, asset processing."""
    repo = media.repo
    async with repo.store.transaction():
        planned = await repo.plan_variants(
            asset.id, [(name, v.digest, v.kind) for name, v in profile.variants.items()])
        for row in planned:
            if row.state == "planned":
                await repo.transition_variant(asset.id, row.name, "planned", "queued")
        current = await repo.require_asset(asset.id)
        if current.state == "available":
            await repo.transition_asset(asset.id, "available", "processing")


def _row_stamp(row: Any) -> tuple[Any, ...]:
    return (row.state, row.updated_at, row.generated_at, row.storage_key, row.attempts)


async def _wait_ready(media: Any, asset_id: str, names: list[str],
                      before: dict[str, tuple[Any, ...]], timeout: float) -> list[Any]:
    """Until every variant row is ready *and* was (re)built after the timer started."""
    deadline = time.monotonic() + timeout
    while True:
        rows = {v.name: v for v in await media.repo.list_variants(asset_id)}
        failed = [f"{n}: {rows[n].error_reason}" for n in names
                  if n in rows and rows[n].state == "failed"]
        if failed:
            raise RuntimeError("variants failed: " + "; ".join(failed))
        done = [n for n in names if n in rows and rows[n].state == "ready"
                and _row_stamp(rows[n]) != before.get(n)]
        if len(done) == len(names):
            return [rows[n] for n in names]
        if time.monotonic() > deadline:
            states = {n: (rows[n].state if n in rows else "absent") for n in names}
            raise TimeoutError(f"variants not all rebuilt and ready after {timeout}s: {states}")
        await asyncio.sleep(0.005)


async def _rindle_timed(src: str, out: Path, state: Path, asset_id: str,
                        rindle_path: str) -> dict[str, Any]:
    import pyvips

    ops = _count_vips_ops(pyvips)
    media, profile = _rindle_runtime(state, with_variants=True)
    from rindle.processing import pipeline

    storage = media.storages["local"]
    reads: Counter[str] = Counter()
    read_bytes: Counter[str] = Counter()
    original_stream = storage.stream

    async def counting_stream(key: str, *args: Any, **kwargs: Any) -> Any:
        reads[key] += 1
        async for chunk in original_stream(key, *args, **kwargs):
            read_bytes[key] += len(chunk)
            yield chunk

    storage.stream = counting_stream  # instance attribute: what the processor looks up
    in_place: Counter[str] = Counter()
    original_local_path = getattr(storage, "local_path", None)
    if callable(original_local_path):
        def counting_local_path(key: str, *args: Any, **kwargs: Any) -> Any:
            in_place[key] += 1
            return original_local_path(key, *args, **kwargs)

        storage.local_path = counting_local_path

    names = list(profile.variants)
    async with media.connected():
        asset = await media.asset(asset_id)
        if rindle_path in ("process_variants", "process_variant"):
            await _plan_and_queue(media, profile, asset)  # untimed bookkeeping
            asset = await media.asset(asset_id)
        before = {v.name: _row_stamp(v) for v in await media.repo.list_variants(asset_id)}
        if rindle_path != "requeue_variants":
            before = {n: s for n, s in before.items() if s[0] == "ready"}
        # A running worker has its processor loaded; load it here too, untimed, just as the
        # pyvips baseline imports pyvips before its timer.
        media.processor_for("image")
        ops.clear()
        rss_before = _current_rss_kib()

        requeue = _requeue_function(media) if rindle_path == "requeue_variants" else None
        if rindle_path == "requeue_variants" and requeue is None:
            raise RuntimeError("this Rindle has no requeue_variants")
        via = requeue[1] if requeue else f"pipeline.{rindle_path}"

        cpu_started = time.process_time()
        started = time.perf_counter()
        if requeue is not None:
            result = requeue[0](asset_id, force=True)
            if inspect.isawaitable(result):
                result = await result
        elif rindle_path == "process_variants":
            await pipeline.process_variants(media, asset_id, names)
        elif rindle_path == "process_variant":
            process_one = getattr(pipeline, "process_variant")  # noqa: B009 (may not exist)
            for name in names:
                await process_one(media, asset_id, name)
        else:
            await pipeline.schedule_variants(media, profile, asset)
        await media.drain(timeout=1800)
        rows = await _wait_ready(media, asset_id, names, before, timeout=1800)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        peak = _peak_rss_kib()
        vips_ops = _interesting_ops(ops)

        # Untimed: copy the stored variants out for the parent to verify.
        ext_of = {"image/jpeg": "jpg", "image/webp": "webp", "image/png": "png"}
        outputs = {}
        for row in rows:
            size_name = row.name.split("_", 1)[0]
            ext = ext_of.get(row.content_type or "", "bin")
            dst = out / f"{size_name}.{ext}"
            with open(dst, "wb") as f:
                async for chunk in original_stream(row.storage_key):
                    f.write(chunk)
            outputs[row.name] = {"file": dst.name, "width": row.width, "height": row.height,
                                 "content_type": row.content_type}
        final = await media.asset(asset_id)

    original_key = asset.storage_key
    queue = getattr(media, "queue", None)
    return {
        "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_kib": peak,
        "rss_before_kib": rss_before,
        "vips_ops": vips_ops, "rindle_path": via,
        "original_reads": reads.get(original_key, 0),
        "original_in_place": in_place.get(original_key, 0),
        "original_read_mib": round(read_bytes.get(original_key, 0) / 2**20, 1),
        "original_mib": round(os.path.getsize(src) / 2**20, 1),
        "other_reads": sum(v for k, v in reads.items() if k != original_key),
        "queue": repr(queue), "asset_state": final.state, "rows": outputs,
    }


def run_worker(args: argparse.Namespace) -> int:
    contender, image = args.worker
    out = Path(args.out or ".")
    if args.out:
        out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"contender": contender, "image": image, "pid": os.getpid()}
    try:
        if contender == "pyvips":
            payload.update(worker_pyvips(args.src, out))
        elif contender == "one-decode":
            payload.update(worker_one_decode(args.src, out))
        elif contender == "pillow":
            payload.update(worker_pillow(args.src, out))
        elif contender == "rindle-setup":
            payload.update(asyncio.run(_rindle_setup(args.src, Path(args.state),
                                                     args.rindle_path)))
        elif contender == "rindle":
            payload.update(asyncio.run(_rindle_timed(args.src, out, Path(args.state),
                                                     args.asset_id, args.rindle_path)))
        else:
            raise SystemExit(f"unknown worker {contender!r}")
    except Exception as exc:
        payload["error"] = f"{type(exc).__name__}: {exc}"
        emit(payload)
        raise
    emit(payload)
    return 0


# --- the parent: inputs, runs, verification, report ---------------------------------------------


def generate_inputs(root: Path, keys: list[str]) -> dict[str, dict[str, Any]]:
    import pyvips

    strip = _strip_kwargs(pyvips)
    made = {}
    for i, key in enumerate(keys):
        label, w, h, fmt = IMAGES[key]
        path = root / f"{key}.{'png' if fmt == 'png' else 'jpg'}"
        started = time.perf_counter()
        xy = pyvips.Image.xyz(w, h)
        gx = xy[0] * (255.0 / max(w - 1, 1))
        gy = xy[1] * (255.0 / max(h - 1, 1))
        smooth = gx.bandjoin([gy, 255.0 - (gx + gy) * 0.5])
        noise = pyvips.Image.gaussnoise(w, h, sigma=NOISE_SIGMA, mean=0.0, seed=SEED + 10 * i)
        noise = noise.bandjoin([
            pyvips.Image.gaussnoise(w, h, sigma=NOISE_SIGMA, mean=0.0, seed=SEED + 10 * i + b)
            for b in (1, 2)])
        image = (smooth + noise).cast("uchar").copy(interpretation="srgb")
        if fmt == "png":
            image.pngsave(str(path), compression=6, **strip)
        else:
            image.jpegsave(str(path), Q=SOURCE_QUALITY, **strip)
        made[key] = {"path": str(path), "label": label, "width": w, "height": h, "format": fmt,
                     "bytes": path.stat().st_size}
        print(f"  generated {path.name}: {w}x{h} {fmt}, {path.stat().st_size / 2**20:.1f} MiB "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
    return made


def expected_fit(w: int, h: int, box: int) -> tuple[int, int]:
    scale = min(box / w, box / h, 1.0)
    return max(1, round(w * scale)), max(1, round(h * scale))


def verify_outputs(out: Path, src_w: int, src_h: int) -> list[str]:
    """Every contender must leave thumb/large x jpg/webp, decodable, of the expected size."""
    import pyvips

    problems = []
    for size_name, px in SIZES.items():
        ew, eh = expected_fit(src_w, src_h, px)
        for fmt, ext in FORMATS.items():
            path = out / f"{size_name}.{ext}"
            if not path.exists():
                problems.append(f"{path.name} missing")
                continue
            try:
                image = pyvips.Image.new_from_file(str(path), access="sequential")
                loader = image.get("vips-loader")
                image.avg()  # decode every pixel
            except pyvips.Error as exc:
                problems.append(f"{path.name} does not decode: {str(exc).strip()[:120]}")
                continue
            if not loader.startswith(fmt):
                problems.append(f"{path.name} is {loader}, not {fmt}")
            w, h = image.width, image.height
            # the long side must be exact; the short side may differ by rounding
            ok = ((w == ew and abs(h - eh) <= 1) if ew >= eh else (h == eh and abs(w - ew) <= 1))
            if not ok:
                problems.append(f"{path.name} is {w}x{h}, expected {ew}x{eh}")
    return problems


def run_one(contender: str, key: str, src: dict[str, Any], work: Path, rep: int,
            rindle_path: str, timeout: float) -> dict[str, Any]:
    out = work / "out" / key / f"{contender}-{rep}"
    if out.exists():
        shutil.rmtree(out)
    argv = ["--worker", contender, key, "--src", src["path"], "--out", str(out)]
    if contender != "rindle":
        result = _child(argv, timeout)
    else:
        state = work / "rindle" / f"{key}-{rep}"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        setup = _child(["--worker", "rindle-setup", key, "--src", src["path"],
                           "--state", str(state), "--rindle-path", rindle_path], timeout)
        if "error" in setup:
            setup["error"] = "setup: " + setup["error"]
            return setup
        want = "ready" if rindle_path == "requeue_variants" else "available"
        if setup.get("state") != want:
            return {"error": f"setup left the asset {setup.get('state')!r}, expected {want!r} "
                             f"(variants: {setup.get('variants')})"}
        result = _child(argv + ["--state", str(state), "--asset-id", setup["asset_id"],
                                   "--rindle-path", rindle_path], timeout)
        shutil.rmtree(state, ignore_errors=True)  # the stored original is large
    if "error" not in result:
        result["problems"] = verify_outputs(out, src["width"], src["height"])
    return result


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def report(images: dict[str, dict[str, Any]], contenders: list[str],
           results: dict[tuple[str, str], list[dict[str, Any]]], rindle_path: str) -> None:
    for key, src in images.items():
        print()
        print(f"{src['label']} ({src['width']}x{src['height']}, "
              f"{src['bytes'] / 2**20:.1f} MiB {src['format']})")
        stats: dict[str, dict[str, Any]] = {}
        for c in contenders:
            ok = [r for r in results[(key, c)] if "error" not in r]
            stats[c] = {
                "time": median([r["seconds"] for r in ok]),
                "cpu": median([r["cpu_seconds"] for r in ok if "cpu_seconds" in r]),
                "rss": median([r["peak_rss_kib"] / 1024 for r in ok]),
                "base": median([r["rss_before_kib"] / 1024 for r in ok
                                 if r.get("rss_before_kib") is not None]),
                "delta": median([(r["peak_rss_kib"] - r["rss_before_kib"]) / 1024 for r in ok
                                  if r.get("rss_before_kib") is not None]),
                "runs": len(ok), "of": len(results[(key, c)]),
            }
        base_t = stats.get("pyvips", {}).get("time")
        base_r = stats.get("pyvips", {}).get("rss")
        one_t = stats.get("one-decode", {}).get("time")
        headers = ["contender", "time s", "vs pyvips", "vs one-decode", "cpu s",
                   "peak RSS MiB", "vs pyvips", "RSS at start", "peak-start", "runs"]
        rows = []
        for c in contenders:
            s = stats[c]
            name = CONTENDERS[c] + (f" [{rindle_path}]" if c == "rindle" else "")
            if s["time"] is None:
                rows.append([name, "FAILED", "-", "-", "-", "-", "-", "-", "-", f"0/{s['of']}"])
                continue
            rows.append([
                name, f"{s['time']:.3f}",
                _fmt_ratio(s["time"] / base_t if base_t else None),
                _fmt_ratio(s["time"] / one_t if one_t else None),
                "-" if s["cpu"] is None else f"{s['cpu']:.3f}",
                f"{s['rss']:.1f}",
                _fmt_ratio(s["rss"] / base_r if base_r else None),
                "-" if s["base"] is None else f"{s['base']:.1f}",
                "-" if s["delta"] is None else f"{s['delta']:.1f}",
                f"{s['runs']}/{s['of']}",
            ])
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                         for i, h in enumerate(headers))
        print("  " + line)
        print("  " + "-" * len(line))
        for cells in rows:
            print("  " + "  ".join(str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i])
                                   for i, v in enumerate(cells)))

        # targets (a reminder, never an assertion)
        rs, ps = stats.get("rindle"), stats.get("pillow")
        if rs and rs["time"] is not None:
            def mark(good: bool | None) -> str:
                return "n/a" if good is None else ("met" if good else "MISSED")

            t_ratio = rs["time"] / base_t if base_t else None
            o_ratio = rs["time"] / one_t if one_t else None
            r_ratio = rs["rss"] / base_r if base_r else None
            t_ok = None if t_ratio is None else t_ratio <= TARGET_TIME_VS_PYVIPS
            o_ok = None if o_ratio is None else o_ratio <= TARGET_TIME_VS_ONE_DECODE
            r_ok = None if r_ratio is None else r_ratio <= TARGET_RSS_VS_PYVIPS
            faster = (rs["time"] < ps["time"]) if ps and ps["time"] is not None else None
            # Runs are interleaved, so run i of Rindle and of one-decode saw the same load:
            # the median of their per-run ratios resists a noisy neighbour better.
            paired = median([r["seconds"] / o["seconds"] for r, o in zip(
                results[(key, "rindle")], results.get((key, "one-decode"), []), strict=False)
                if "error" not in r and "error" not in o])
            if paired is not None:
                print(f"  Rindle / one-decode, median of per-run ratios: {_fmt_ratio(paired)}")
            print(f"  targets: Rindle time <= {TARGET_TIME_VS_ONE_DECODE}x one-decode: "
                  f"{_fmt_ratio(o_ratio)} {mark(o_ok)} | <= {TARGET_TIME_VS_PYVIPS}x pyvips: "
                  f"{_fmt_ratio(t_ratio)} {mark(t_ok)} | faster than Pillow: {mark(faster)}"
                  f" | peak RSS <= {TARGET_RSS_VS_PYVIPS}x pyvips: {_fmt_ratio(r_ratio)} "
                  f"{mark(r_ok)}")

        # failures, output problems and what each contender did
        for c in contenders:
            for i, r in enumerate(results[(key, c)]):
                if "error" in r:
                    print(f"  WARNING: {c} run {i + 1} failed: {r['error']}")
                    if r.get("stderr_tail"):
                        print("    " + r["stderr_tail"].replace("\n", "\n    "))
                elif r.get("problems"):
                    print(f"  WARNING: {c} run {i + 1} outputs: " + "; ".join(r["problems"]))
        clean = {c: sum(1 for r in results[(key, c)] if "error" not in r and not r.get("problems"))
                 for c in contenders}
        print("  outputs verified (4 files, decodable, right format and size): " + ", ".join(
            f"{c} {clean[c]}/{len(results[(key, c)])}" for c in contenders))
        for c in contenders:
            ok = [r for r in results[(key, c)] if "error" not in r]
            if not ok:
                continue
            r = ok[0]
            if c == "rindle":
                print(f"  rindle: path={r['rindle_path']}, queue={r['queue']}, vips ops="
                      f"{r['vips_ops']}")
                print(f"    original: streamed from storage {r['original_reads']}x "
                      f"({r['original_read_mib']} MiB of a {r['original_mib']} MiB file), "
                      f"opened in place via storage.local_path {r.get('original_in_place', 0)}x;"
                      f" asset ended {r['asset_state']}")
            elif c in ("pyvips", "one-decode"):
                print(f"  {c}: vips ops={r['vips_ops']}")


def environment(rindle_path: str | None, runs: int) -> None:
    import pyvips

    try:
        import PIL
        pil = PIL.__version__
    except ImportError:
        pil = "not installed"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    print("Rindle image-variant benchmark")
    print(f"  python {platform.python_version()} on {platform.machine()}, "
          f"cpu_count={os.cpu_count()}, usable cpus={affinity}")
    print(f"  libvips {'.'.join(str(pyvips.version(i)) for i in range(3))}, "
          f"pyvips {pyvips.__version__}, pyvips.concurrency_get()={pyvips.concurrency_get()} "
          f"(VIPS_CONCURRENCY={os.environ.get('VIPS_CONCURRENCY', 'unset')}), Pillow {pil}")
    print(f"  runs per contender and image: {runs} (median reported); every run is a fresh "
          "process; time excludes interpreter start-up and imports")
    if rindle_path:
        print(f"  rindle: variants triggered via {rindle_path!r} "
              "(auto-detected unless --rindle-path was given)")
    print(f"  outputs: thumb {SIZES['thumb']}px + large {SIZES['large']}px fit, each as "
          f"JPEG Q={QUALITY} and WebP Q={QUALITY}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark image variant building: raw "
                                     "pyvips vs one-decode pyvips vs Pillow vs Rindle.")
    parser.add_argument("--quick", action="store_true", help="one run per contender and image")
    parser.add_argument("--runs", type=int, default=None, help="runs per contender (default 3)")
    parser.add_argument("--images", default=",".join(IMAGES),
                        help=f"comma-separated subset of {','.join(IMAGES)}")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--rindle-path", choices=("auto", *RINDLE_PATHS), default="auto",
                        help="how Rindle is asked to build the variants (default: detect)")
    parser.add_argument("--tmpdir", default=None, help="where the temporary directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--timeout", type=float, default=1800, help="per-process timeout, s")
    # hidden: the per-contender child process
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--asset-id", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        return run_worker(args)

    runs = args.runs or (1 if args.quick else 3)
    keys = [k.strip() for k in args.images.split(",") if k.strip()]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for k in keys:
        if k not in IMAGES:
            parser.error(f"unknown image {k!r}; choose from {', '.join(IMAGES)}")
    for c in contenders:
        if c not in CONTENDERS:
            parser.error(f"unknown contender {c!r}; choose from {', '.join(CONTENDERS)}")

    rindle_path = None
    if "rindle" in contenders:
        rindle_path = detect_rindle_path() if args.rindle_path == "auto" else args.rindle_path
    environment(rindle_path, runs)

    work = Path(tempfile.mkdtemp(prefix="rindle-bench-", dir=args.tmpdir))
    print(f"  temp dir: {work}")
    try:
        (work / "src").mkdir()
        images = generate_inputs(work / "src", keys)
        results: dict[tuple[str, str], list[dict[str, Any]]] = {
            (k, c): [] for k in keys for c in contenders}
        for key in keys:
            for rep in range(runs):
                for c in contenders:  # interleaved, so drift hits every contender alike
                    r = run_one(c, key, images[key], work, rep, rindle_path or "", args.timeout)
                    results[(key, c)].append(r)
                    if "error" in r:
                        msg = f"FAILED: {r['error']}"
                    else:
                        msg = (f"{r['seconds']:.3f} s, peak {r['peak_rss_kib'] / 1024:.1f} MiB"
                               + (" (output problems)" if r.get("problems") else ""))
                    print(f"  {key} {c} run {rep + 1}/{runs}: {msg}", flush=True)
        report(images, contenders, results, rindle_path or "")
        print()
        print("Columns: time = median wall time of the timed work only; cpu = the child's CPU "
              "time (all threads) in it;\npeak RSS = the child's "
              "VmHWM; RSS at start = VmRSS\njust before the timer (interpreter + imports, and "
              "for Rindle the connected runtime); peak-start = growth during the work. MiB.")
        print(f"Targets (reminder): Rindle <= {TARGET_TIME_VS_ONE_DECODE}x the one-decode "
              f"pyvips time and <= {TARGET_TIME_VS_PYVIPS}x raw-pyvips time on each image, "
              f"faster than Pillow on each image, peak RSS <= {TARGET_RSS_VS_PYVIPS}x raw "
              "pyvips.")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
