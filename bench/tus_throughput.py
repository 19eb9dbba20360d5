#!/usr/bin/env python
"""tus throughput: 1 GiB over loopback with tus-js-client, Rindle against other tus servers.

Run from the repository root (after ``npm install`` at the root)::

    .venv/bin/python bench/tus_throughput.py                    # 2 runs, medians
    .venv/bin/python bench/tus_throughput.py --size-mib 256 --runs 1
    .venv/bin/python bench/tus_throughput.py --contenders raw-put,rindle-fast --modes chunked

This is a benchmark, not a test: it never asserts timings and exits 0 unless the harness
itself breaks. The targets are printed as a reminder next to the measured ratios.

Contenders, each a fresh server process per run, all on loopback, all storing to local disk
in a fresh directory under ``--tmpdir``:

* ``raw-put`` (the ceiling): a raw ASGI app on the same uvicorn stack as Rindle that writes
  each PUT body to a file (``?offset=N`` opens it there), synchronously on the loop.
* ``tus-node``: ``@tus/server`` with ``@tus/file-store`` (bench/node, the package's own
  ``server.listen``: node:http).
* ``tuspyserver``: tuspyserver's FastAPI router (``create_tus_router``) in a FastAPI app on
  the same uvicorn stack. It is not a dependency of Rindle: install it apart, e.g.
  ``.venv/bin/python -m pip install --target /tmp/rindle-bench-tuspyserver --no-deps
  tuspyserver`` (it needs only FastAPI, which the venv has); ``--tuspyserver-path`` names that
  directory, ``--tuspyserver-python`` another interpreter.
* ``rindle-fast``, ``rindle-durable``: Rindle's tus routes (``/rindle/tus/bench/``) on
  ``LocalStorage`` and a fresh SQLite file, ``Rindle(durable_uploads=False)`` and the default
  (an fsync before every acknowledged offset). Promotion is parked (a queue that keeps its
  entries): the benchmark times the tus path, not what follows the last byte.
* ``rindle-fast-pg``, ``rindle-durable-pg`` (only when asked for): the same on a throwaway
  PostgreSQL database.

The uvicorn contenders run ``uvicorn --loop uvloop --http httptools --workers 1
--no-access-log``. Modes: ``chunked`` (``--chunk-mib``, 8 MiB PATCHes / PUTs) and ``single``
(one request for the whole file). The client is ``bench/node/tus_client.mjs``: tus-js-client
4.3 in Node reading an ``fs.ReadStream`` (never the whole file in memory); for ``raw-put``
the same script sends plain PUTs of the same slices on one keep-alive connection.

Per (contender, mode): MiB/s from the client's clock (creation to the last answer), the
server process's CPU seconds per GiB (``/proc/<pid>/stat``, all its threads), and its peak
RSS growth: ``VmHWM`` after the upload minus ``VmRSS`` before it, the high-water mark reset
(``/proc/<pid>/clear_refs``) before each upload; every server first takes a small warm-up
upload. Each stored file is checked (size, and 1 MiB blocks at the start, middle and end
against the source), then deleted. Medians over ``--runs``; the contenders run interleaved
in each run, so a busy neighbour hurts them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import free_port  # noqa: E402

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
NODE_DIR = HERE.parent / "node"
HOST = "127.0.0.1"
MiB = 1024 * 1024
SECRET = "bench-secret-key-0123456789abcdef"
PROFILE = "bench"
METADATA = {"filename": "lecture.mp4", "filetype": "video/mp4"}
CONTENDERS = ("raw-put", "tus-node", "tuspyserver", "rindle-fast", "rindle-durable")
OPTIONAL = ("rindle-fast-pg", "rindle-durable-pg")
MODES = ("chunked", "single")
LABELS = {
    "raw-put": "raw ASGI PUT (ceiling)",
    "tus-node": "@tus/server + FileStore",
    "tuspyserver": "tuspyserver (FastAPI)",
    "rindle-fast": "Rindle fast (SQLite)",
    "rindle-durable": "Rindle durable (SQLite)",
    "rindle-fast-pg": "Rindle fast (PostgreSQL)",
    "rindle-durable-pg": "Rindle durable (PostgreSQL)",
}
PG_ADMIN_URL = os.environ.get("RINDLE_BENCH_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
DEFAULT_TUSPY = "/tmp/rindle-bench-tuspyserver"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


# --- the servers (run inside uvicorn) ---------------------------------------------------------


def make_app() -> Any:
    """uvicorn ``--factory`` entry point: the app for ``TUS_BENCH_CONTENDER``."""
    contender = os.environ["TUS_BENCH_CONTENDER"]
    files = Path(os.environ["TUS_BENCH_FILES"])
    if contender == "raw-put":
        return make_raw_app(files)
    if contender == "tuspyserver":
        return make_tuspy_app(files)
    return make_rindle_app(files, os.environ["TUS_BENCH_DB_URL"],
                           durable=contender.startswith("rindle-durable"))


def make_raw_app(files: Path) -> Any:
    """The ceiling: each PUT body straight into a file, no framework at all."""
    files.mkdir(parents=True, exist_ok=True)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] != "PUT":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        name = scope["path"].rsplit("/", 1)[-1]
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if p)
        offset = int(query.get("offset", "0"))
        fd = os.open(files / name, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if not offset else 0),
                     0o666)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return
                body = message.get("body", b"")
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view):]
                more = message.get("more_body", False)
        finally:
            os.close(fd)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def make_tuspy_app(files: Path) -> Any:
    from fastapi import FastAPI
    from tuspyserver import create_tus_router

    files.mkdir(parents=True, exist_ok=True)
    app = FastAPI()
    app.include_router(create_tus_router(prefix="files", files_dir=str(files),
                                         max_size=1 << 40))
    return app


class ParkedQueue:
    """Keeps every job it is given: what follows the last byte (promotion) is not timed."""

    name = "parked"

    async def start(self, media: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def enqueue(self, entry: Any) -> None:
        return None


def make_rindle_app(files: Path, url: str, *, durable: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from rindle import AllowAll, LocalStorage, Profile, Rindle

    class BenchProfile(Profile):
        name = PROFILE
        storage = "local"
        allow_mime = ["video/mp4"]
        max_bytes = int(os.environ["TUS_BENCH_MAX_BYTES"])

    media = Rindle(database_url=url, storages={"local": LocalStorage(root=files)},
                   profiles=[BenchProfile], secret_keys=[SECRET], authorizer=AllowAll(),
                   queue=ParkedQueue(), durable_uploads=durable)
    return Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)


# --- the harness --------------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    return found


def _reset_hwm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (all threads)


class Server:
    """One contender's server process on a free port, its storage in ``files``."""

    def __init__(self, contender: str, workdir: Path, args: argparse.Namespace,
                 db_url: str | None) -> None:
        self.contender = contender
        self.port = free_port(HOST)
        self.files = workdir / f"files-{contender}"
        self.files.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"server-{contender}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        env = dict(os.environ, TUS_BENCH_CONTENDER=contender, TUS_BENCH_FILES=str(self.files),
                   TUS_BENCH_DB_URL=db_url or "", TUS_BENCH_MAX_BYTES=str(args.max_bytes),
                   PYTHONPATH=os.pathsep.join([str(HERE.parent), str(REPO)]))
        python = sys.executable
        if contender == "tus-node":
            cmd = ["node", str(NODE_DIR / "tus_node_server.mjs"), str(self.port),
                   str(self.files), str(args.max_bytes)]
            self.endpoint = f"http://{HOST}:{self.port}/files"
        else:
            if contender == "tuspyserver":
                env["PYTHONPATH"] = os.pathsep.join(
                    [args.tuspyserver_path, env["PYTHONPATH"]])
                python = args.tuspyserver_python or python
                self.endpoint = f"http://{HOST}:{self.port}/files"
            elif contender == "raw-put":
                self.endpoint = f"http://{HOST}:{self.port}/put/upload.bin"
            else:
                self.endpoint = f"http://{HOST}:{self.port}/rindle/tus/{PROFILE}/"
            cmd = [python, "-m", "uvicorn", "--factory", "tus_throughput:make_app",
                   "--app-dir", str(HERE.parent), "--host", HOST, "--port", str(self.port),
                   "--workers", "1", "--loop", "uvloop", "--http", "httptools",
                   "--no-access-log", "--timeout-graceful-shutdown", "5",
                   "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=str(REPO))
        self.pid = self.proc.pid
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{contender} did not start:\n"
                                   + self.log_path.read_text()[-3000:])
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
            conn.request("OPTIONS", self.endpoint.partition(str(self.port))[2] or "/",
                         headers={"Tus-Resumable": "1.0.0"})
            conn.getresponse().read()
            conn.close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def clear_files(self) -> None:
        for entry in self.files.iterdir():
            if entry.is_dir():
                # Rindle's tmp directory stays; everything else goes.
                for path in sorted(entry.rglob("*"), reverse=True):
                    if path.is_file():
                        path.unlink()
                    elif path.is_dir() and path.name != ".rindle-tmp":
                        with contextlib.suppress(OSError):
                            path.rmdir()
                if entry.name != ".rindle-tmp":
                    with contextlib.suppress(OSError):
                        entry.rmdir()
            else:
                entry.unlink()

    def stored(self, size: int) -> Path | None:
        """The file holding the upload: the one of ``size`` bytes under the storage root."""
        for path in self.files.rglob("*"):
            if path.is_file() and path.stat().st_size == size:
                return path
        return None


def make_source(path: Path, size: int) -> None:
    """``size`` bytes: an MP4 ``ftyp`` box, then 4 MiB of random bytes over and over, each
    repeat made distinct by its index (so a misplaced block shows)."""
    block = os.urandom(4 * MiB)
    with open(path, "wb") as f:
        head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
        written = 0
        index = 0
        while written < size:
            piece = index.to_bytes(8, "big") + block[8:]
            if index == 0:
                piece = head + piece[len(head):]
            piece = piece[: size - written]
            f.write(piece)
            written += len(piece)
            index += 1


def check_stored(source: Path, stored: Path | None, size: int) -> str | None:
    if stored is None:
        return f"no stored file of {size} bytes"
    with open(source, "rb") as a, open(stored, "rb") as b:
        for at in (0, size // 2, max(0, size - MiB)):
            a.seek(at)
            b.seek(at)
            if a.read(MiB) != b.read(MiB):
                return f"the stored file differs from the source near byte {at}"
    return None


def run_client(server: Server, source: Path, chunk: int, timeout: float) -> dict[str, Any]:
    opts = {"mode": "put" if server.contender == "raw-put" else "tus",
            "endpoint": server.endpoint, "file": str(source), "chunkSize": chunk,
            "metadata": METADATA}
    done = subprocess.run(["node", str(NODE_DIR / "tus_client.mjs"), json.dumps(opts)],
                          capture_output=True, text=True, timeout=timeout, cwd=str(NODE_DIR))
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise RuntimeError(f"the client failed ({done.returncode}): {done.stderr[-800:]}")
    return dict(json.loads(lines[-1]))


def measure(server: Server, source: Path, size: int, chunk: int,
            timeout: float) -> dict[str, Any]:
    """One upload, with the server's CPU and RSS around it."""
    before = _proc_status(server.pid)
    hwm_reset = _reset_hwm(server.pid)
    cpu0 = _cpu_seconds(server.pid)
    result = run_client(server, source, chunk, timeout)
    cpu1 = _cpu_seconds(server.pid)
    after = _proc_status(server.pid)
    if not result.get("ok"):
        raise RuntimeError(f"the upload failed: {result}")
    problem = check_stored(source, server.stored(size), size)
    server.clear_files()
    if problem:
        raise RuntimeError(problem)
    peak = after["VmHWM"] if hwm_reset else max(after["VmHWM"], before["VmRSS"])
    return {"mib_s": size / MiB / result["seconds"], "seconds": result["seconds"],
            "cpu_per_gib": (cpu1 - cpu0) * (1024 * MiB) / size,
            "client_cpu_per_gib": result["clientCpu"] * (1024 * MiB) / size,
            "rss_growth": max(0, peak - before["VmRSS"]), "rss_start": before["VmRSS"],
            "requests": result.get("requests"), "hwm_reset": hwm_reset}


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated Rindle database: a fresh SQLite file or a throwaway PostgreSQL one."""
    from rindle.model import migrate

    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        migrate.upgrade(url)
        yield url
        return
    import asyncpg

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    name = f"rindle_tus_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_contender(contender: str, workdir: Path, source: Path, warmup: Path,
                  args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    db_kind = "postgres" if contender.endswith("-pg") else "sqlite"
    db = (database(db_kind, workdir) if contender.startswith("rindle")
          else contextlib.nullcontext(None))
    results: dict[str, dict[str, Any]] = {}
    with db as url:
        server = Server(contender, workdir, args, url)
        try:
            run_client(server, warmup, min(args.chunk, 2 * MiB), args.timeout)
            server.clear_files()
            for mode in args.modes:
                chunk = args.chunk if mode == "chunked" else 0
                try:
                    results[mode] = measure(server, source, args.size, chunk, args.timeout)
                except Exception as exc:  # report it and go on
                    results[mode] = {"error": str(exc)[:400]}
        finally:
            server.stop()
            shutil.rmtree(server.files, ignore_errors=True)
    return results


# --- the report ---------------------------------------------------------------------------------


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def print_report(results: dict[tuple[str, str], list[dict[str, Any]]],
                 args: argparse.Namespace) -> None:
    runs = args.runs
    print(f"\n## medians of {runs} run(s); {args.size / MiB:g} MiB per upload; chunked = "
          f"{args.chunk / MiB:g} MiB PATCHes, single = one PATCH\n")
    header = ("| contender | mode | MiB/s | per run | server CPU s/GiB | client CPU s/GiB "
              "| server RSS growth MB | RSS at start MB | requests |")
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    med: dict[tuple[str, str], dict[str, float]] = {}
    for (contender, mode), rows in results.items():
        good = [r for r in rows if "error" not in r]
        label = LABELS[contender]
        if not good:
            err = rows[0]["error"] if rows else "not run"
            print(f"| {label} | {mode} | failed: {err} |")
            continue
        m = {k: _median(good, k) for k in ("mib_s", "cpu_per_gib", "client_cpu_per_gib",
                                           "rss_growth", "rss_start")}
        med[(contender, mode)] = m
        per_run = " / ".join(f"{r['mib_s']:.0f}" for r in good)
        failed = len(rows) - len(good)
        note = f" ({failed} failed: {rows[[r for r in rows].index(next(r for r in rows if 'error' in r))]['error'][:120]})" if failed else ""  # noqa: E501
        print(f"| {label} | {mode} | {m['mib_s']:.0f} | {per_run} | {m['cpu_per_gib']:.2f} "
              f"| {m['client_cpu_per_gib']:.2f} | {m['rss_growth'] / 1e6:.1f} "
              f"| {m['rss_start'] / 1e6:.0f} | {good[0]['requests']}{note} |")

    def ratio(a: tuple[str, str], b: tuple[str, str]) -> float | None:
        if a in med and b in med and med[b]["mib_s"]:
            return med[a]["mib_s"] / med[b]["mib_s"]
        return None

    print("\nratios (MiB/s, medians of the same run set) and targets:")
    for suffix, db in (("", "SQLite"), ("-pg", "PostgreSQL")):
        fast, durable = f"rindle-fast{suffix}", f"rindle-durable{suffix}"
        lines = []
        for mode in args.modes:
            checks = [
                (f"{fast} / tus-node", (fast, mode), ("tus-node", mode), 1.0),
                (f"{fast} / raw-put", (fast, mode), ("raw-put", mode), 0.85),
                (f"{fast} / tuspyserver", (fast, mode), ("tuspyserver", mode), None),
                (f"{durable} / {fast}", (durable, mode), (fast, mode),
                 0.8 if mode == "chunked" else None),
                (f"{durable} / tus-node", (durable, mode), ("tus-node", mode), None),
            ]
            for name, a, b, target in checks:
                r = ratio(a, b)
                if r is None:
                    continue
                verdict = ("" if target is None
                           else f"  (target >= {target}: {'met' if r >= target else 'NOT met'})")
                lines.append(f"  {mode:8} {name:36} {r:5.2f}x{verdict}")
        for mode in args.modes:
            for contender in (fast, durable):
                if (contender, mode) in med:
                    growth = med[(contender, mode)]["rss_growth"] / 1e6
                    lines.append(f"  {mode:8} {contender + ' RSS growth':36} {growth:5.1f} MB"
                                 f"  (target < 64 MB: {'met' if growth < 64 else 'NOT met'})")
        if lines:
            print(f" Rindle on {db}:")
            print("\n".join(lines))
    print("\nnotes:")
    print(f"  * {os.cpu_count()} CPUs; the client (node, tus-js-client) shares them with the "
          "server. Server CPU is the server process's utime+stime (all threads); RSS growth is "
          "VmHWM after the upload minus VmRSS before it (high-water mark reset first).")
    print("  * Only Rindle durable fsyncs before acknowledging an offset; @tus/server's "
          "FileStore, tuspyserver, raw-put and Rindle fast leave the bytes in the page cache.")


def main() -> int:
    parser = argparse.ArgumentParser(description="tus upload throughput over loopback: Rindle "
                                                 "vs @tus/server, tuspyserver, a raw PUT")
    parser.add_argument("--size-mib", type=float, default=1024.0, help="upload size (1024)")
    parser.add_argument("--chunk-mib", type=float, default=8.0, help="chunked mode's size (8)")
    parser.add_argument("--modes", default=",".join(MODES), help="chunked,single")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated from {', '.join(CONTENDERS + OPTIONAL)}")
    parser.add_argument("--runs", type=int, default=2, help="runs (median), default 2")
    parser.add_argument("--tuspyserver-path", default=DEFAULT_TUSPY,
                        help="a directory holding the tuspyserver package (PYTHONPATH)")
    parser.add_argument("--tuspyserver-python", default=None,
                        help="the interpreter for tuspyserver (default: this one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per upload, seconds")
    parser.add_argument("--tmpdir", default=None, help="where the files go (a real disk)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    args.size = int(args.size_mib * MiB)
    args.chunk = int(args.chunk_mib * MiB)
    args.max_bytes = max(args.size, 1024 * MiB) + MiB
    args.modes = [m for m in args.modes.split(",") if m]
    contenders = [c for c in args.contenders.split(",") if c]
    for given, known in ((args.modes, MODES), (contenders, CONTENDERS + OPTIONAL)):
        unknown = set(given) - set(known)
        if unknown:
            parser.error(f"unknown: {sorted(unknown)}; choose from {', '.join(known)}")
    if "tuspyserver" in contenders and args.tuspyserver_python is None and not (
            Path(args.tuspyserver_path) / "tuspyserver").is_dir():
        print(f"skipping tuspyserver: not found in {args.tuspyserver_path} (install it with "
              f"`{sys.executable} -m pip install --target {DEFAULT_TUSPY} --no-deps "
              "tuspyserver`, or pass --tuspyserver-path / --tuspyserver-python)")
        contenders.remove("tuspyserver")
    if not (REPO / "node_modules" / "@tus" / "server").is_dir():
        parser.error("run `npm install` at the repository root first (bench/node workspace)")
    workdir = Path(tempfile.mkdtemp(prefix="tus-bench-", dir=args.tmpdir))
    print(f"# tus throughput: Python {sys.version.split()[0]}, node "
          f"{subprocess.run(['node', '-v'], capture_output=True, text=True).stdout.strip()}, "
          f"{os.cpu_count()} CPUs, {args.size / MiB:g} MiB, modes {','.join(args.modes)}, "
          f"{args.runs} run(s), work directory {workdir}")
    results: dict[tuple[str, str], list[dict[str, Any]]] = {
        (c, m): [] for c in contenders for m in args.modes}
    started = time.monotonic()
    try:
        source, warmup = workdir / "source.bin", workdir / "warmup.bin"
        make_source(source, args.size)
        make_source(warmup, 4 * MiB)
        for run in range(args.runs):
            for contender in contenders:
                print(f"run {run + 1}/{args.runs}: {contender} ...", end=" ", flush=True)
                try:
                    got = run_contender(contender, workdir, source, warmup, args)
                except Exception as exc:  # report it and go on with the next one
                    got = {m: {"error": str(exc)[:400]} for m in args.modes}
                for mode, row in got.items():
                    results[(contender, mode)].append(row)
                print(", ".join(f"{m} {r['mib_s']:.0f} MiB/s" if "error" not in r
                                else f"{m} FAILED: {r['error'][:200]}"
                                for m, r in got.items()), flush=True)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"(took {time.monotonic() - started:.0f} s)")
    print_report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
