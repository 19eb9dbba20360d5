#!/usr/bin/env python
"""Burst benchmark: 200 photos through two rq workers vs the in-process queue, on PostgreSQL.

Run from the repository root::

    .venv/bin/python bench/rq_burst.py              # one run of each contender
    .venv/bin/python bench/rq_burst.py --runs 2     # two runs, a table each, then the medians

This is a benchmark, not a test: it never asserts timings. The targets are printed beside the
numbers as a reminder: the sweeper sends 0 entries in a healthy run, and rq reaches "all
ready" in at most 1.3x the inline queue's time on this 2-core machine.

Both contenders get the same burst: ``--photos`` (200) distinct JPEGs (``--size``, 800x600:
a gradient plus seeded ``gaussnoise``, made once with pyvips), uploaded server-side with
``media.upload(profile, bytes)``, ``--upload-concurrency`` (4) at a time, into a profile with
two image variants ("thumb": fit 160 px WebP; "medium": fit 640 px JPEG). The clock starts at
the first upload and stops when every asset is ``ready``. Each contender gets a throwaway
PostgreSQL database (created, migrated, dropped) and its own storage directory.

* **inline** (the baseline): ``Rindle(queue="inline")`` in the benchmark process, as the
  embedded default runs: four jobs at a time as asyncio tasks beside the uploads.
* **rq**: ``RQQueue`` on Redis with a queue of its own and two ``rindle worker`` processes
  (``--workers``), started and registered before the clock; live events through Redis, as
  the doctor requires with rq. Jobs run in the workers, the uploads in this process.
* **rq-fork**: the same with ``rindle worker --fork``: rq's work horse per job, each job
  connecting the runtime afresh.

Each contender runs in a fresh subprocess of this script (the hidden ``--contender``
argument), which is the "web process": it runs the runtime's own sweeper
(``connected(sweeper=True)``, every second) and counts what ``Outbox.sweep`` sends by
wrapping the runtime's own ``outbox.sweep`` (nothing in Rindle is patched). The work inside
each job is Rindle's own ``rindle.job`` telemetry (the stop's ``duration``: the job's
dispatch, without its bookkeeping); rq workers import this file as their app
(``--app rq_burst:media``) and append those events to a file. For rq the per-job overhead
is measured from rq's own job records: the job's wall time (``started_at`` to
``ended_at``) minus the work inside it, plus the gap between one job's end and the next
job's start on the same worker while jobs were waiting (rq's dequeue and bookkeeping, and
with ``--fork`` the fork of the work horse).
CPU is user+system seconds of the benchmark process and of the workers (with their work
horses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
RESULT_PREFIX = "@@BENCH@@ "
PG_ADMIN_URL = os.environ.get("RINDLE_BENCH_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RINDLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TARGET_RATIO = 1.3
TARGET_SWEPT = 0
SECRET = "bench-secret-key-0123456789abcdef"
JOB_KINDS = ("promote_asset", "process_variants")


# --- the runtime (also what the rq workers import: --app rq_burst:media) ------------------------


def build_media() -> Any:
    """The runtime, configured from the environment this script sets for its children."""
    sys.path.insert(0, str(REPO))
    from rindle import AllowAll, LocalStorage, Profile, Rindle, Variant
    from rindle.processing.queue import RQQueue

    class Photo(Profile):
        name = "photo"
        storage = "local"
        allow_mime = ["image/jpeg", "image/png"]
        max_bytes = 20 * 1024 * 1024
        variants = {
            "thumb": Variant(mode="fit", width=160, height=160, format="webp", quality=80),
            "medium": Variant(mode="fit", width=640, height=640, format="jpeg", quality=80),
        }

    env = os.environ
    rq_name = env.get("RQ_BURST_QUEUE")
    queue: Any = "inline"
    broadcast = "memory://"
    if rq_name:
        queue = RQQueue(REDIS_URL, name=rq_name, app_path="rq_burst:media")
        broadcast = REDIS_URL
    return Rindle(
        database_url=env["RQ_BURST_DATABASE_URL"],
        storages={"local": LocalStorage(root=env["RQ_BURST_FILES"])},
        profiles=[Photo], secret_keys=[SECRET], authorizer=AllowAll(), queue=queue,
        broadcast_url=broadcast, sweep_interval=1.0, app_path="rq_burst:media")


class _JobEvents:
    """Rindle's ``rindle.job`` telemetry of this process (the stop and exception of each
    attempt): kept in a list, or appended to a file (rq workers: one ``O_APPEND`` write per
    event; a work horse has no socket to share)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []

    def __call__(self, name: str, measurements: dict[str, Any], meta: dict[str, Any]) -> None:
        if name.endswith(".start"):
            return
        event = {"job": meta["job"], "duration": measurements["duration"],
                 "outcome": "ok" if name.endswith(".stop") else "error",
                 "asset_id": meta["asset_id"], "pid": os.getpid()}
        if self.path is None:
            self.events.append(event)
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(event) + "\n").encode())
        finally:
            os.close(fd)


media: Any = None
if os.environ.get("RQ_BURST_ROLE") == "worker":
    media = build_media()
    from rindle import telemetry as _telemetry

    _telemetry.attach("rindle.job.", _JobEvents(os.environ["RQ_BURST_EVENTS"]))


# --- inputs ---------------------------------------------------------------------------------------


def make_photos(count: int, width: int, height: int) -> list[bytes]:
    """``count`` distinct JPEGs: a gradient plus seeded noise, so sizes are realistic."""
    import pyvips

    gradient = (pyvips.Image.xyz(width, height)[0] * (255 / width)).cast("uchar")
    out = []
    for i in range(count):
        noise = pyvips.Image.gaussnoise(width, height, sigma=24, mean=0, seed=1000 + i)
        band = (gradient + noise + (i % 64)).cast("uchar")
        image = band.bandjoin([(gradient * 0.5 + noise).cast("uchar"),
                               (255 - gradient + noise).cast("uchar")])
        out.append(bytes(image.jpegsave_buffer(Q=88)))
    return out


# --- one contender, in its own process (the "web process") ---------------------------------------


async def _contender(photos_dir: Path, concurrency: int, timeout: float) -> dict[str, Any]:
    from rindle import telemetry

    media = build_media()
    events = _JobEvents(None)
    telemetry.attach("rindle.job.", events)
    original_sweep = media.outbox.sweep
    swept = {"calls": 0, "sent": 0}

    async def counting_sweep(*args: Any, **kwargs: Any) -> int:
        sent = int(await original_sweep(*args, **kwargs))
        swept["calls"] += 1
        swept["sent"] += sent
        return sent

    media.outbox.sweep = counting_sweep  # the runtime's own instance, not Rindle's class
    photos = [p.read_bytes() for p in sorted(photos_dir.glob("*.jpg"))]
    gate = asyncio.Semaphore(concurrency)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    async with media.connected(sweeper=True):
        async def upload(i: int, data: bytes) -> None:
            async with gate:
                await media.upload("photo", data, filename=f"{i}.jpg")

        started = time.monotonic()
        await asyncio.gather(*(upload(i, d) for i, d in enumerate(photos)))
        uploaded = time.monotonic() - started
        deadline = started + timeout
        while True:
            counts = await media.repo.count_by_state("asset")
            if counts.get("ready", 0) == len(photos):
                break
            if time.monotonic() > deadline or counts.get("quarantined"):
                raise RuntimeError(f"not all ready after {timeout}s: {counts}")
            await asyncio.sleep(0.02)
        all_ready = time.monotonic() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        # Untimed: a variant job settles its asset before it marks its own entry done.
        while True:
            entries = await media.repo.list_outbox(limit=10_000)
            if all(e.state in ("done", "failed") for e in entries if e.kind in JOB_KINDS):
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        runs = await media.repo.db.fetch_all(
            "SELECT started_at, finished_at, state FROM rindle_processing_runs")
    return {
        "all_ready": all_ready, "uploaded": uploaded, "photos": len(photos),
        "cpu_web": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
        "swept": swept, "events": events.events,
        "entries": [{"id": e.id, "kind": e.kind, "state": e.state, "attempts": e.attempts,
                     "asset_id": e.payload.get("asset_id")} for e in entries],
        "runs": len(runs), "runs_ok": sum(1 for r in runs if r["state"] == "succeeded"),
    }


def contender_main(args: argparse.Namespace) -> None:
    result = asyncio.run(_contender(Path(args.photos_dir), args.upload_concurrency,
                                    args.timeout))
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")


# --- orchestration -----------------------------------------------------------------------------


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _cpu_seconds(pid: int) -> float:
    """utime+stime of a process and of its children it waited for (rq's work horses)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _start_workers(env: dict[str, str], count: int, logs: Path, queue: str,
                   fork: bool) -> list[subprocess.Popen[bytes]]:
    from redis import Redis
    from rq import Queue, Worker

    procs = []
    for n in range(count):
        log = (logs / f"worker-{n}.log").open("ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "rindle.cli", "worker", "--app", "rq_burst:media",
             "--name", f"burst-{queue[-8:]}-{n}", "--log-level", "warning",
             *(["--fork"] if fork else [])],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent,
            start_new_session=True))
    conn = Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + 60
    while len(Worker.all(queue=Queue(queue, connection=conn))) < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"the rq workers did not start; see {logs}")
        time.sleep(0.05)
    conn.close()
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _rq_jobs(queue: str, entries: list[dict[str, Any]], events_path: Path) -> dict[str, Any]:
    """rq's records of the run's jobs, and the telemetry the workers wrote."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job

    asset_of = {e["id"]: e["asset_id"] for e in entries}
    conn = Redis.from_url(REDIS_URL)
    try:
        ids = [f"rindle-{e['id']}" for e in entries if e["kind"] in JOB_KINDS]
        jobs = [j for j in Job.fetch_many(ids, connection=conn) if j is not None]
        # Refused or crashed jobs; none in a healthy run.
        failed = len(Queue(queue, connection=conn).failed_job_registry)
    finally:
        conn.close()
    records = [{"kind": str(j.description).split()[1], "worker": j.worker_name,
                "enqueued": j.enqueued_at.timestamp(), "started": j.started_at.timestamp(),
                "ended": j.ended_at.timestamp(), "asset": asset_of.get(j.args[0])}
               for j in jobs if j.started_at and j.ended_at and j.enqueued_at]
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    return {"records": records, "events": events, "failed": failed}


def _gaps(records: list[dict[str, Any]]) -> list[float]:
    """Per worker: next start minus previous end, where the next job was already waiting."""
    by_worker: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_worker[r["worker"]].append(r)
    gaps = []
    for jobs in by_worker.values():
        jobs.sort(key=lambda r: r["started"])
        for prev, nxt in zip(jobs, jobs[1:], strict=False):
            if nxt["enqueued"] < prev["ended"]:
                gaps.append(nxt["started"] - prev["ended"])
    return gaps


def run_contender(name: str, photos_dir: Path, workdir: Path,
                  args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from rindle.model import migrate

    db = f"rindle_burst_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{db}"'))
    url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{db}"
    files = workdir / f"{name}-files"
    uses_rq = name.startswith("rq")
    queue = f"rq-burst-{uuid.uuid4().hex[:8]}" if uses_rq else ""
    events_path = workdir / f"{name}-{uuid.uuid4().hex[:6]}-events.jsonl"
    env = {**os.environ, "RQ_BURST_DATABASE_URL": url, "RQ_BURST_FILES": str(files),
           "RQ_BURST_QUEUE": queue, "RQ_BURST_EVENTS": str(events_path),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        migrate.upgrade(url)
        if uses_rq:
            workers = _start_workers({**env, "RQ_BURST_ROLE": "worker"}, args.workers,
                                     workdir, queue, fork=name == "rq-fork")
        cpu_workers0 = sum(_cpu_seconds(p.pid) for p in workers)
        out = subprocess.run(
            [sys.executable, str(HERE), "--contender", "--photos-dir", str(photos_dir),
             "--upload-concurrency", str(args.upload_concurrency),
             "--timeout", str(args.timeout)],
            env=env, capture_output=True, text=True, cwd=REPO)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
        if out.returncode or not lines:
            raise RuntimeError(f"the {name} contender failed:\n{out.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX):])
        result["cpu_workers"] = (sum(_cpu_seconds(p.pid) for p in workers) - cpu_workers0
                                 if workers else 0.0)
        if uses_rq:
            rq = _rq_jobs(queue, result["entries"], events_path)
            result["events"] = rq["events"]
            result["rq"] = {"records": rq["records"], "gaps": _gaps(rq["records"]),
                            "failed": rq["failed"]}
        return result
    finally:
        _stop(workers)
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        if not args.keep:
            import shutil

            shutil.rmtree(files, ignore_errors=True)


# --- the report --------------------------------------------------------------------------------


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def summarize(name: str, r: dict[str, Any]) -> dict[str, Any]:
    work: dict[str, list[float]] = defaultdict(list)
    for e in r["events"]:
        work[e["job"]].append(e["duration"])
    jobs = [e for e in r["entries"] if e["kind"] in JOB_KINDS]
    row: dict[str, Any] = {
        "contender": name, "all_ready": r["all_ready"], "uploaded": r["uploaded"],
        "jobs": len(jobs), "reruns": sum(max(0, e["attempts"] - 1) for e in jobs),
        "not_done": sum(1 for e in jobs if e["state"] != "done"),
        "work_ms": {k: 1000 * _mean(v) for k, v in sorted(work.items())},
        "swept": r["swept"]["sent"], "sweeps": r["swept"]["calls"],
        "cpu": r["cpu_web"] + r["cpu_workers"], "cpu_workers": r["cpu_workers"],
        "horse_ms": None, "gap_ms": None, "rq_failed": 0,
    }
    if "rq" in r:
        by_asset_kind = {(e["asset_id"], e["job"]): e["duration"] for e in r["events"]}
        inside = []
        for rec in r["rq"]["records"]:
            done = by_asset_kind.get((rec["asset"], rec["kind"]))
            if done is not None:
                inside.append(rec["ended"] - rec["started"] - done)
        row["horse_ms"] = 1000 * _mean(inside) if inside else None
        row["gap_ms"] = 1000 * _mean(r["rq"]["gaps"])
        row["rq_failed"] = r["rq"]["failed"]
    return row


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    base = next(r for r in rows if r["contender"] == "inline")
    print(f"\n{title}")
    header = (f"{'contender':<10} {'all ready':>10} {'ratio':>6} {'uploads':>8} {'jobs':>5} "
              f"{'work/job ms (promote, variants)':>32} {'overhead/job ms':>16} "
              f"{'swept':>6} {'reruns':>6} {'CPU s':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        work = r["work_ms"]
        work_text = (f"{work.get('promote_asset', float('nan')):.1f}, "
                     f"{work.get('process_variants', float('nan')):.1f}")
        if r["horse_ms"] is None:
            overhead = "-"
        else:
            overhead = f"{r['horse_ms'] + r['gap_ms']:.1f}"
        ratio = r["all_ready"] / base["all_ready"]
        print(f"{r['contender']:<10} {r['all_ready']:>9.2f}s {ratio:>6.2f} "
              f"{r['uploaded']:>7.2f}s {r['jobs']:>5} {work_text:>32} {overhead:>16} "
              f"{r['swept']:>6} {r['reruns']:>6} {r['cpu']:>7.1f}")
    for r in rows:
        if r["horse_ms"] is not None:
            print(f"  {r['contender']}: overhead per job = {r['horse_ms']:.1f} ms in the job "
                  f"(rq's wall minus the work: connecting, bookkeeping) + "
                  f"{r['gap_ms']:.1f} ms between jobs (rq's dequeue, the fork); workers' CPU "
                  f"{r['cpu_workers']:.1f} s; {r['rq_failed']} failed rq job(s)")
        if r["not_done"]:
            print(f"  {r['contender']}: {r['not_done']} job(s) not done!")
    rq = next((r for r in rows if r["contender"] == "rq"), None)
    if rq is not None:
        ratio = rq["all_ready"] / base["all_ready"]
        swept = ", ".join(f"{r['contender']} {r['swept']}" for r in rows)
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(f"  target: rq / inline time to all ready <= {TARGET_RATIO} -> {ratio:.2f} "
              f"({verdict}); entries sent by the sweeper: {swept} (target {TARGET_SWEPT})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--size", default="800x600", help="WIDTHxHEIGHT of each photo")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--upload-concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--contenders", default="inline,rq,rq-fork")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep photos, files and logs")
    parser.add_argument("--contender", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--photos-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        contender_main(args)
        return
    names = [n for n in args.contenders.split(",") if n]
    if "inline" not in names:
        names.insert(0, "inline")  # the baseline is measured in the same run
    workdir = Path(tempfile.mkdtemp(prefix="rq-burst-"))
    width, height = (int(v) for v in args.size.split("x"))
    photos_dir = workdir / "photos"
    photos_dir.mkdir()
    for i, data in enumerate(make_photos(args.photos, width, height)):
        (photos_dir / f"{i:04d}.jpg").write_bytes(data)
    size = sum(p.stat().st_size for p in photos_dir.iterdir())
    print(f"{args.photos} photos {width}x{height} JPEG ({size / args.photos / 1024:.0f} KiB "
          f"each), 2 variants each; {os.cpu_count()} cores; PostgreSQL at "
          f"{PG_ADMIN_URL.rpartition('@')[2]}; rq with {args.workers} workers on {REDIS_URL}")
    all_rows: list[list[dict[str, Any]]] = []
    for run in range(args.runs):
        rows = [summarize(n, run_contender(n, photos_dir, workdir, args)) for n in names]
        all_rows.append(rows)
        print_table(rows, f"run {run + 1} of {args.runs}")
    if args.runs > 1:
        medians = []
        for i in range(len(names)):
            runs = [rows[i] for rows in all_rows]
            row = dict(runs[0])
            for key in ("all_ready", "uploaded", "cpu", "cpu_workers", "horse_ms", "gap_ms"):
                if runs[0][key] is not None:
                    row[key] = statistics.median(r[key] for r in runs)
            row["work_ms"] = {kind: statistics.median(r["work_ms"][kind] for r in runs)
                              for kind in runs[0]["work_ms"]}
            row["swept"] = sum(r["swept"] for r in runs)
            medians.append(row)
        print_table(medians, f"median of {args.runs} runs (swept: total)")
    if args.keep:
        print(f"kept {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
