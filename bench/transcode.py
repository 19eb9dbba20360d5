#!/usr/bin/env python
"""Video-transcode benchmark: Rindle's Web preset vs hand-written ffmpeg commands.

Run from the repository root::

    .venv/bin/python bench/transcode.py            # 30 s clip, 2 runs per contender, median
    .venv/bin/python bench/transcode.py --quick    # 10 s clip, 1 run each

This is a benchmark, not a test: it never asserts timings and always exits 0 unless the
harness itself breaks. The targets are printed as a reminder next to the measured ratios.

The input is generated once, in a temporary directory, with ffmpeg: ``testsrc2`` at
1920x1080, 30 fps, plus a 440 Hz ``sine`` in stereo, encoded with libx264 (CRF 20,
``veryfast``, yuv420p) and AAC 128k into an MP4 with ``+faststart`` (``--seconds``, 30).
Every contender builds the same three files from it, with the options of
``rindle/processing/av.py``: "web_720p" (H.264 fitted in 1280x720), "web_480p" (fitted in
854x480) and "poster" (a JPEG of the first scene change within the first 10 s, else of the
first frame, fitted in 1280x720):

* ``separate`` (a): three hand-written ffmpeg commands, one after the other: one per
  rendition (libx264 CRF 23 ``veryfast``, maxrate/bufsize 2500k/5000k and 1200k/2400k,
  High profile, yuv420p, AAC 128k stereo, ``+faststart``, no metadata) and the poster
  command of av.py (``-t 10``, ``split`` into ``select='gt(scene,0.4)'`` and the first
  frame, MJPEG ``-q:v 3``). Three decodes of the original.
* ``single`` (b): the best single hand-written command for the same files: ONE decode,
  ``split=4`` into the two scaler+encoder chains and the two poster chains (the scene
  chain cut at 10 s, the first-frame chain after one frame, both with ``trim``), four
  outputs. The floor Rindle is held to.
* ``rindle``: the real library. A ``Rindle`` runtime on SQLite + ``LocalStorage``, the
  inline queue, a profile subclassing ``rindle.Web`` with ``with_480p = True``. A separate,
  untimed process uploads the clip server-side (``media.upload``) into a profile of the
  same name without variants, so the asset is promoted (probed, checked) and left
  ``available`` with no variant built. The timed process then plans and queues the
  variants exactly as promotion does (``pipeline.schedule_variants``) and stops the clock
  when all three variant rows are ``ready``: the job, the ffprobe calls, the ffmpeg runs,
  storing the outputs and the bookkeeping are all included.

Every (contender, run) is a fresh subprocess of this script (hidden ``--worker`` argument),
the contenders interleaved run by run. CPU time is the process tree's: the child's own
(``RUSAGE_SELF``) plus its reaped subprocesses' (``RUSAGE_CHILDREN``: ffmpeg, ffprobe).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import emit, median, run_child  # noqa: E402

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent


def _child(argv: list[str], timeout: float) -> dict[str, Any]:
    """One contender in a child process of this script; a non-zero exit fails the run."""
    return run_child(HERE, argv, timeout, exit_code_is_error=True)

CONTENDERS: dict[str, str] = {
    "single": "(b) single ffmpeg command",
    "separate": "(a) separate ffmpeg commands",
    "rindle": "Rindle (Web, with_480p)",
}
TARGET_VS_SINGLE = 1.05

FPS = 30
SRC_SIZE = (1920, 1080)
# av.py's recipes: name -> (box width, box height, maxrate, bufsize)
RENDITIONS: dict[str, tuple[int, int, str, str]] = {
    "720p": (1280, 720, "2500k", "5000k"),
    "480p": (854, 480, "1200k", "2400k"),
}
POSTER_BOX = (1280, 720)
POSTER_SECONDS = 10
NO_METADATA = ["-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact"]
FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-nostats"]


# --- measuring inside a child -----------------------------------------------------------------


def _cpu() -> tuple[float, float]:
    """(this process's CPU, its reaped children's CPU), user + system, in seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _peak_rss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _fit(width: int, height: int) -> str:
    """av.py's scaler: inside width x height, aspect kept, never enlarged, even sides."""
    return (f"scale=w='min({width},iw)':h='min({height},ih)':"
            "force_original_aspect_ratio=decrease:force_divisible_by=2")


def _video_args(name: str) -> list[str]:
    _w, _h, maxrate, bufsize = RENDITIONS[name]
    return ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-maxrate", maxrate,
            "-bufsize", bufsize, "-profile:v", "high", "-fps_mode", "vfr", *NO_METADATA,
            "-movflags", "+faststart", "-f", "mp4", "-y"]


AUDIO_ARGS = ["-map", "0:a:0", "-c:a", "aac", "-b:a", "128k", "-ac", "2"]
JPEG_ARGS = ["-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3", *NO_METADATA, "-update", "1",
             "-f", "image2", "-y"]
POSTER_FIT = f"{_fit(*POSTER_BOX)},format=yuvj420p"


def _pick_poster(out: Path) -> None:
    """av.py's choice: the scene-change frame when there is one, else the first frame."""
    scene, first = out / "poster-scene.jpg", out / "poster-first.jpg"
    chosen = scene if scene.exists() and scene.stat().st_size > 0 else first
    chosen.replace(out / "poster.jpg")
    scene.unlink(missing_ok=True)
    first.unlink(missing_ok=True)


def commands_separate(src: str, out: Path) -> list[list[str]]:
    cmds = []
    for name, (w, h, _rate, _buf) in RENDITIONS.items():
        cmds.append([*FFMPEG, "-i", src, "-filter_complex",
                     f"[0:V:0]{_fit(w, h)},format=yuv420p[v]", "-map", "[v]", *AUDIO_ARGS,
                     *_video_args(name), str(out / f"{name}.mp4")])
    cmds.append([*FFMPEG, "-t", str(POSTER_SECONDS), "-i", src, "-filter_complex",
                 f"[0:V:0]split=2[a][b];[a]select='gt(scene,0.4)',{POSTER_FIT}[p0];"
                 f"[b]{POSTER_FIT}[p1]",
                 "-map", "[p0]", *JPEG_ARGS, str(out / "poster-scene.jpg"),
                 "-map", "[p1]", *JPEG_ARGS, str(out / "poster-first.jpg")])
    return cmds


def commands_single(src: str, out: Path) -> list[list[str]]:
    names = list(RENDITIONS)
    chains = [f"[0:V:0]split={len(names) + 2}" + "".join(f"[s{i}]" for i in range(len(names)))
              + "[pa][pb]"]
    outputs: list[str] = []
    for i, name in enumerate(names):
        w, h, _rate, _buf = RENDITIONS[name]
        chains.append(f"[s{i}]{_fit(w, h)},format=yuv420p[v{i}]")
        outputs += ["-map", f"[v{i}]", *AUDIO_ARGS, *_video_args(name), str(out / f"{name}.mp4")]
    chains.append(f"[pa]trim=end={POSTER_SECONDS},select='gt(scene,0.4)',{POSTER_FIT}[p0]")
    # Without the trim, ffmpeg 5.1 keeps scaling every frame for an output that closed
    # after its first one: the branch is cut where the output is.
    chains.append(f"[pb]trim=end_frame=1,{POSTER_FIT}[p1]")
    outputs += ["-map", "[p0]", *JPEG_ARGS, str(out / "poster-scene.jpg"),
                "-map", "[p1]", *JPEG_ARGS, str(out / "poster-first.jpg")]
    return [[*FFMPEG, "-i", src, "-filter_complex", ";".join(chains), *outputs]]


def worker_ffmpeg(contender: str, src: str, out: Path) -> dict[str, Any]:
    cmds = (commands_separate if contender == "separate" else commands_single)(src, out)
    procs = []
    own0, kids0 = _cpu()
    started = time.perf_counter()
    for cmd in cmds:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg exit {proc.returncode}: {proc.stderr.strip()[-600:]}")
        procs.append({"name": "ffmpeg", "seconds": round(time.perf_counter() - t0, 3)})
    _pick_poster(out)
    seconds = time.perf_counter() - started
    own1, kids1 = _cpu()
    return {"seconds": seconds, "cpu_self": own1 - own0, "cpu_children": kids1 - kids0,
            "procs": procs, "peak_rss_kib": _peak_rss_kib(),
            "commands": [" ".join(c[len(FFMPEG):]) for c in cmds]}


# --- Rindle ---------------------------------------------------------------------------------------


def _rindle_runtime(state: Path, *, with_variants: bool) -> tuple[Any, Any]:
    """A runtime on SQLite + LocalStorage under ``state``; the profile is named ``bench`` in
    both the setup (no variants: promotion leaves the asset ``available``) and the timed
    process (``rindle.Web`` with ``with_480p``: web_720p, web_480p, poster)."""
    sys.path.insert(0, str(REPO))
    from rindle import AllowAll, LocalStorage, Rindle, Web

    if with_variants:
        class BenchWeb(Web):
            name = "bench"
            storage = "local"
            with_480p = True
    else:
        class BenchWeb(Web):  # type: ignore[no-redef]
            name = "bench"
            storage = "local"
            variants = {}  # noqa: RUF012 (a Profile's class attribute)

    (state / "scratch").mkdir(parents=True, exist_ok=True)
    media = Rindle(
        database_url=f"sqlite:///{state}/bench.db",
        storages={"local": LocalStorage(root=f"{state}/files")},
        profiles=[BenchWeb],
        secret_keys=["x" * 32],
        authorizer=AllowAll(),
        queue="inline",
        scratch_dir=str(state / "scratch"),
    )
    return media, BenchWeb


async def _rindle_setup(src: str, state: Path) -> dict[str, Any]:
    from rindle.model import migrate

    media, profile = _rindle_runtime(state, with_variants=False)
    await asyncio.to_thread(migrate.upgrade, media.database_url)  # alembic runs its own loop
    async with media.connected():
        with open(src, "rb") as f:
            result = await media.upload(profile, f, filename="clip.mp4",
                                        content_type="video/mp4",
                                        byte_size=os.path.getsize(src))
        await media.drain(timeout=600)
        asset = await media.asset(result.asset.id)
        rows = await media.repo.list_variants(asset.id)
    return {"asset_id": asset.id, "state": asset.state,
            "variants": {v.name: v.state for v in rows}}


def _watch_subprocesses(log: list[dict[str, Any]]) -> None:
    """Record every ffmpeg/ffprobe Rindle starts: its name, start and end (perf_counter).

    ``run_ffmpeg`` and the probes start their processes through ``ffmpeg.spawn`` (imported
    by name into ``av_probe``): both names are wrapped, and the process's ``wait``."""
    from rindle.processing import av_probe, ffmpeg

    original = ffmpeg.spawn

    async def spawn(argv: Any, *args: Any, **kwargs: Any) -> Any:
        entry = {"name": Path(str(argv[0])).name, "start": time.perf_counter(), "end": None}
        log.append(entry)
        proc = await original(argv, *args, **kwargs)
        wait = proc.wait

        async def timed_wait() -> int:
            rc = await wait()
            if entry["end"] is None:
                entry["end"] = time.perf_counter()
            return rc

        proc.wait = timed_wait
        return proc

    ffmpeg.spawn = spawn
    if getattr(av_probe, "spawn", None) is original:
        av_probe.spawn = spawn


def _busy(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of the intervals."""
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


async def _wait_ready(media: Any, asset_id: str, names: list[str], timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = {v.name: v for v in await media.repo.list_variants(asset_id)}
        failed = [f"{n}: {rows[n].error_reason}" for n in names
                  if n in rows and rows[n].state == "failed"]
        if failed:
            raise RuntimeError("variants failed: " + "; ".join(failed))
        if all(n in rows and rows[n].state == "ready" for n in names):
            return [rows[n] for n in names]
        if time.monotonic() > deadline:
            states = {n: (rows[n].state if n in rows else "absent") for n in names}
            raise TimeoutError(f"variants not all ready after {timeout}s: {states}")
        await asyncio.sleep(0.005)


async def _rindle_timed(out: Path, state: Path, asset_id: str) -> dict[str, Any]:
    media, profile = _rindle_runtime(state, with_variants=True)
    from rindle.processing import pipeline

    spawned: list[dict[str, Any]] = []
    _watch_subprocesses(spawned)
    names = list(profile.variants)
    async with media.connected():
        asset = await media.asset(asset_id)
        if asset.state != "available" or await media.repo.list_variants(asset_id):
            raise RuntimeError(f"the asset is {asset.state} with variant rows; expected "
                               "available with none")
        media.processor_for("video")  # a running worker has its processor loaded already
        own0, kids0 = _cpu()
        started = time.perf_counter()
        await pipeline.schedule_variants(media, profile, asset)  # what promotion does
        await media.drain(timeout=1800)
        rows = await _wait_ready(media, asset_id, names, timeout=1800)
        seconds = time.perf_counter() - started
        own1, kids1 = _cpu()

        # Untimed: copy the stored variants out for the parent to verify.
        storage = media.storages["local"]
        files = {"web_720p": "720p.mp4", "web_480p": "480p.mp4", "poster": "poster.jpg"}
        for row in rows:
            with open(out / files.get(row.name, row.name), "wb") as f:
                async for chunk in storage.stream(row.storage_key):
                    f.write(chunk)
        final = await media.asset(asset_id)
    done = [p for p in spawned if p["end"] is not None]
    busy = _busy([(p["start"], p["end"]) for p in done])
    return {
        "seconds": seconds, "cpu_self": own1 - own0, "cpu_children": kids1 - kids0,
        "peak_rss_kib": _peak_rss_kib(),
        "procs": [{"name": p["name"], "seconds": round(p["end"] - p["start"], 3)}
                  for p in done],
        "subprocess_busy": busy, "outside_subprocesses": seconds - busy,
        "queue": repr(media.queue), "asset_state": final.state,
        "variants": {r.name: [r.width, r.height, r.content_type] for r in rows},
    }


def run_worker(args: argparse.Namespace) -> int:
    contender = args.worker
    out = Path(args.out or ".")
    if args.out:
        out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"contender": contender, "pid": os.getpid()}
    try:
        if contender in ("single", "separate"):
            payload.update(worker_ffmpeg(contender, args.src, out))
        elif contender == "rindle-setup":
            payload.update(asyncio.run(_rindle_setup(args.src, Path(args.state))))
        elif contender == "rindle":
            payload.update(asyncio.run(_rindle_timed(out, Path(args.state), args.asset_id)))
        else:
            raise SystemExit(f"unknown worker {contender!r}")
    except Exception as exc:
        payload["error"] = f"{type(exc).__name__}: {exc}"
        emit(payload)
        raise
    emit(payload)
    return 0


# --- the parent: input, runs, verification, report ----------------------------------------------


def generate_clip(root: Path, seconds: float) -> dict[str, Any]:
    path = root / "clip-1080p.mp4"
    w, h = SRC_SIZE
    cmd = [*FFMPEG, "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={FPS}:duration={seconds:g}",
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:g}",
           "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest",
           "-movflags", "+faststart", "-y", str(path)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"could not generate the clip: {proc.stderr.strip()[-800:]}")
    info = ffprobe(path)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    clip = {"path": str(path), "bytes": path.stat().st_size, "width": v["width"],
            "height": v["height"], "duration": float(info["format"]["duration"])}
    print(f"  generated {path.name}: {clip['width']}x{clip['height']} h264 + aac, "
          f"{clip['duration']:.1f} s, {clip['bytes'] / 2**20:.1f} MiB in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return clip


def ffprobe(path: Path) -> dict[str, Any]:
    proc = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format",
                           "-of", "json", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ValueError(proc.stderr.strip()[-200:] or f"ffprobe exit {proc.returncode}")
    return json.loads(proc.stdout)


def verify_outputs(out: Path, duration: float) -> list[str]:
    """720p.mp4 and 480p.mp4: H.264 High yuv420p of the right size, AAC, the whole duration;
    poster.jpg: a JPEG of 1280x720 that decodes."""
    problems = []
    sizes = {"720p": ({1280}, {720}), "480p": ({852, 854}, {480})}
    for name, (widths, heights) in sizes.items():
        path = out / f"{name}.mp4"
        if not path.exists():
            problems.append(f"{path.name} missing")
            continue
        try:
            info = ffprobe(path)
        except ValueError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        video = [s for s in info["streams"] if s["codec_type"] == "video"]
        audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
        if len(video) != 1 or video[0]["codec_name"] != "h264":
            problems.append(f"{path.name}: video {[s['codec_name'] for s in video]}, not h264")
            continue
        v = video[0]
        if v["width"] not in widths or v["height"] not in heights:
            problems.append(f"{path.name} is {v['width']}x{v['height']}")
        if v.get("pix_fmt") != "yuv420p":
            problems.append(f"{path.name} is {v.get('pix_fmt')}")
        if len(audio) != 1 or audio[0]["codec_name"] != "aac":
            problems.append(f"{path.name}: audio {[s['codec_name'] for s in audio]}")
        got = float(info["format"].get("duration", 0))
        if abs(got - duration) > 0.5:
            problems.append(f"{path.name} lasts {got:.2f} s, not {duration:.2f}")
    poster = out / "poster.jpg"
    if not poster.exists():
        problems.append("poster.jpg missing")
    else:
        try:
            info = ffprobe(poster)
            v = info["streams"][0]
            if v["codec_name"] != "mjpeg" or (v["width"], v["height"]) != POSTER_BOX:
                problems.append(f"poster.jpg is {v['codec_name']} {v['width']}x{v['height']}")
            dec = subprocess.run(["ffmpeg", "-v", "error", "-i", str(poster), "-f", "null", "-"],
                                 capture_output=True, text=True)
            if dec.returncode != 0 or dec.stderr.strip():
                problems.append(f"poster.jpg does not decode cleanly: {dec.stderr.strip()[:120]}")
        except ValueError as exc:
            problems.append(f"poster.jpg: {exc}")
    return problems


def run_one(contender: str, clip: dict[str, Any], work: Path, rep: int,
            timeout: float) -> dict[str, Any]:
    out = work / "out" / f"{contender}-{rep}"
    shutil.rmtree(out, ignore_errors=True)
    argv = ["--worker", contender, "--src", clip["path"], "--out", str(out)]
    if contender != "rindle":
        result = _child(argv, timeout)
    else:
        state = work / "rindle" / f"run-{rep}"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        setup = _child(["--worker", "rindle-setup", "--src", clip["path"],
                           "--state", str(state)], timeout)
        if "error" in setup:
            setup["error"] = "setup: " + setup["error"]
            return setup
        if setup.get("state") != "available" or setup.get("variants"):
            return {"error": f"setup left the asset {setup.get('state')!r} with variants "
                             f"{setup.get('variants')}, expected 'available' with none"}
        result = _child(argv + ["--state", str(state), "--asset-id", setup["asset_id"]],
                           timeout)
        shutil.rmtree(state, ignore_errors=True)
    if "error" not in result:
        result["cpu_seconds"] = result["cpu_self"] + result["cpu_children"]
        result["problems"] = verify_outputs(out, clip["duration"])
    return result


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.3f}x"


def _paired(results: dict[str, list[dict[str, Any]]], a: str, b: str) -> float | None:
    """The median of per-run ratios a/b (run i of both saw the same machine)."""
    return median([x["seconds"] / y["seconds"] for x, y in zip(
        results.get(a, []), results.get(b, []), strict=False)
        if "error" not in x and "error" not in y])


def report(contenders: list[str], results: dict[str, list[dict[str, Any]]]) -> None:
    stats: dict[str, dict[str, Any]] = {}
    for c in contenders:
        ok = [r for r in results[c] if "error" not in r]
        stats[c] = {"time": median([r["seconds"] for r in ok]),
                    "cpu": median([r["cpu_seconds"] for r in ok]),
                    "kids": median([r["cpu_children"] for r in ok]),
                    "own": median([r["cpu_self"] for r in ok]),
                    "runs": len(ok), "of": len(results[c])}
    b_t, a_t = stats.get("single", {}).get("time"), stats.get("separate", {}).get("time")
    b_c, a_c = stats.get("single", {}).get("cpu"), stats.get("separate", {}).get("cpu")
    headers = ["contender", "wall s", "vs (b)", "vs (a)", "cpu s (tree)", "vs (b)", "vs (a)",
               "cpu of which python", "cpu/wall", "runs"]
    rows = []
    for c in contenders:
        s = stats[c]
        if s["time"] is None:
            rows.append([CONTENDERS[c], "FAILED", *["-"] * 7, f"0/{s['of']}"])
            continue
        rows.append([CONTENDERS[c], f"{s['time']:.2f}", _ratio(s["time"], b_t),
                     _ratio(s["time"], a_t), f"{s['cpu']:.2f}", _ratio(s["cpu"], b_c),
                     _ratio(s["cpu"], a_c), f"{s['own']:.2f}", f"{s['cpu'] / s['time']:.2f}",
                     f"{s['runs']}/{s['of']}"])
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                     for i, h in enumerate(headers))
    print()
    print("  " + line)
    print("  " + "-" * len(line))
    for cells in rows:
        print("  " + "  ".join(str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i])
                               for i, v in enumerate(cells)))
    print()
    r_t = stats.get("rindle", {}).get("time")
    print(f"  wall ratios: Rindle/(b) {_ratio(r_t, b_t)}, Rindle/(a) {_ratio(r_t, a_t)}, "
          f"(b)/(a) {_ratio(b_t, a_t)}")
    pr_b, pr_a, pb_a = (_paired(results, "rindle", "single"),
                        _paired(results, "rindle", "separate"),
                        _paired(results, "single", "separate"))
    print("  median of per-run wall ratios: Rindle/(b) "
          f"{'-' if pr_b is None else f'{pr_b:.3f}x'}, Rindle/(a) "
          f"{'-' if pr_a is None else f'{pr_a:.3f}x'}, (b)/(a) "
          f"{'-' if pb_a is None else f'{pb_a:.3f}x'}")
    r_c = stats.get("rindle", {}).get("cpu")
    print(f"  cpu ratios:  Rindle/(b) {_ratio(r_c, b_c)}, Rindle/(a) {_ratio(r_c, a_c)}, "
          f"(b)/(a) {_ratio(b_c, a_c)}")

    def mark(good: bool | None) -> str:
        return "n/a" if good is None else ("met" if good else "MISSED")

    vs_b = None if r_t is None or not b_t else r_t / b_t <= TARGET_VS_SINGLE
    below_a = None if r_t is None or a_t is None else r_t < a_t
    print(f"  targets (reminder): Rindle <= {TARGET_VS_SINGLE}x (b): {_ratio(r_t, b_t)} "
          f"{mark(vs_b)} | Rindle below (a): {_ratio(r_t, a_t)} {mark(below_a)}")

    for c in contenders:
        for i, r in enumerate(results[c]):
            if "error" in r:
                print(f"  WARNING: {c} run {i + 1} failed: {r['error']}")
                if r.get("stderr_tail"):
                    print("    " + r["stderr_tail"].replace("\n", "\n    "))
            elif r.get("problems"):
                print(f"  WARNING: {c} run {i + 1} outputs: " + "; ".join(r["problems"]))
    clean = {c: sum(1 for r in results[c] if "error" not in r and not r.get("problems"))
             for c in contenders}
    print("  outputs verified (720p h264 1280x720 + aac, 480p h264 852/854x480 + aac, "
          "poster JPEG 1280x720 decodes): "
          + ", ".join(f"{c} {clean[c]}/{len(results[c])}" for c in contenders))
    for c in contenders:
        ok = [r for r in results[c] if "error" not in r]
        if not ok:
            continue
        r = ok[0]
        procs = ", ".join(f"{p['name']} {p['seconds']:.2f}s" for p in r["procs"])
        print(f"  {c} (run 1): {len(r['procs'])} subprocesses: {procs}")
        if c == "rindle":
            outside = median([x["outside_subprocesses"] for x in ok])
            print(f"    queue={r['queue']}, asset ended {r['asset_state']}; wall outside any "
                  f"ffmpeg/ffprobe (median): {outside:.3f} s; variants: {r['variants']}")


def environment(runs: int, seconds: float) -> None:
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True)
    first = version.stdout.splitlines()[0] if version.stdout else "ffmpeg: unknown version"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    print("Rindle video-transcode benchmark")
    print(f"  python {platform.python_version()} on {platform.machine()}, "
          f"cpu_count={os.cpu_count()}, usable cpus={affinity}")
    print(f"  {first}")
    print(f"  input: {seconds:g} s {SRC_SIZE[0]}x{SRC_SIZE[1]} {FPS} fps H.264 + AAC "
          "(testsrc2 + sine)")
    print(f"  runs per contender: {runs} (median reported); every run is a fresh process, "
          "contenders interleaved; time excludes interpreter start-up and imports")
    print("  outputs: web_720p + web_480p (libx264 CRF 23 veryfast, maxrate/bufsize, yuv420p, "
          "AAC 128k, +faststart) + poster (JPEG)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark video variant building: Rindle's "
                                     "Web preset vs hand-written ffmpeg commands.")
    parser.add_argument("--quick", action="store_true", help="a 10 s clip, one run each")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of the generated clip (default 30, 10 with --quick)")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per contender (default 2, 1 with --quick)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--tmpdir", default=None, help="where the temporary directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--timeout", type=float, default=1800, help="per-process timeout, s")
    # hidden: the per-contender child process
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--asset-id", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        return run_worker(args)

    runs = args.runs or (1 if args.quick else 2)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for c in contenders:
        if c not in CONTENDERS:
            parser.error(f"unknown contender {c!r}; choose from {', '.join(CONTENDERS)}")
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on PATH (Debian: apt-get install ffmpeg)")
    environment(runs, seconds)

    work = Path(tempfile.mkdtemp(prefix="rindle-bench-transcode-", dir=args.tmpdir))
    print(f"  temp dir: {work}")
    try:
        (work / "src").mkdir()
        clip = generate_clip(work / "src", seconds)
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        for rep in range(runs):
            for c in contenders:  # interleaved, so drift hits every contender alike
                load = os.getloadavg()[0]
                r = run_one(c, clip, work, rep, args.timeout)
                results[c].append(r)
                if "error" in r:
                    msg = f"FAILED: {r['error']}"
                else:
                    # The load average shows a neighbour sharing the cores (2 = ours alone).
                    msg = (f"{r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s cpu, load "
                           f"{load:.1f} -> {os.getloadavg()[0]:.1f}"
                           + (" (output problems)" if r.get("problems") else ""))
                print(f"  {c} run {rep + 1}/{runs}: {msg}", flush=True)
        report(contenders, results)
        print()
        print("Columns: wall = median wall time of the timed work only; cpu (tree) = user + "
              "system CPU of the child\nand of its ffmpeg/ffprobe subprocesses in it "
              "(RUSAGE_SELF + RUSAGE_CHILDREN); of which python = the child's own share;\n"
              "cpu/wall = the cores kept busy (up to 2 here; well below that while a "
              "neighbour shares the machine).")
        print(f"Targets (reminder): Rindle <= {TARGET_VS_SINGLE}x the single hand-written "
              "command (b), and below the separate commands (a).")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
