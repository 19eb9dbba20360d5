#!/usr/bin/env python
"""Control-plane benchmark: the HTTP calls of one direct upload vs a bare one-INSERT endpoint.

Run from the repository root::

    .venv/bin/python bench/control_plane.py                    # SQLite and PostgreSQL
    .venv/bin/python bench/control_plane.py --quick            # shorter windows
    .venv/bin/python bench/control_plane.py --databases sqlite --duration 20 --concurrency 64

This is a benchmark, not a test: it never asserts timings and exits 0 unless the harness
itself breaks. The target is printed as a reminder next to the measured ratio.

Contenders, each on a fresh server process per database:

* ``bare`` (the named baseline): what one writes with Starlette alone -- ``POST
  /bench/insert`` reads the same JSON body as ``POST /rindle/uploads`` with
  ``request.json()``, does one INSERT and answers 201 with a small JSON object. On SQLite one
  aiosqlite connection (autocommit, the same WAL / ``synchronous=NORMAL`` / busy-timeout
  pragmas as Rindle's pool); on PostgreSQL an asyncpg pool (min 1, max 20, like Rindle's).
* ``rindle``: a ``Rindle`` runtime built like the demo's (``LocalStorage``, one profile with
  no variants, ``AllowAll``), mounted as ``Mount("/rindle", app=media.router)`` with
  ``lifespan=media.lifespan``. One flow is the upload's control plane: ``POST
  /rindle/uploads`` (initiate + sign: the API's first two calls) then ``POST
  /rindle/uploads/{session_id}/complete`` (verify: the third). The bytes are not part of the
  control plane: between the two calls the load generator writes the staged object straight
  into the storage root, at the session's upload key (``rindle.upload.keys.staging_key`` of
  the ids in the POST answer -- a wrong key would make every complete fail with
  ``object_missing``; the first flow checks it against the session row). That write is
  timed apart and excluded. Promotion still runs after
  each completion, on the in-process queue of the same server process, during the window.
* ``floor`` (only with ``--contenders floor,...``): the bare app's ``POST /bench/echo``,
  the same body read and a like answer with no database: uvicorn and Starlette alone. Half
  its requests/s is the most flows/s any two-call control plane could reach here.

Both apps run under ``uvicorn --loop uvloop --http httptools`` (``uvicorn[standard]``, as the
demo) with one worker, the demo's ``--timeout-keep-alive 5 --limit-concurrency 2048`` and no
access log, started by this script (hidden ``--factory control_plane:make_app``) on the same
migrated database: a fresh SQLite file, or a throwaway PostgreSQL database dropped after.

The load generator is one separate process: ``--concurrency`` keep-alive connections on
uvloop speaking HTTP/1.1 over raw asyncio protocols with preformatted requests (no HTTP
library), a ``--warmup`` phase, then a ``--duration`` window. Only calls that finish inside
the window count. On a two-core machine the client (and PostgreSQL) compete with the server
for CPU; the output shows how much of it each took.

Row counts come straight from the database (sqlite3 / asyncpg, no Rindle code): the asset
states at the window's edges give the promotions per second during the window, and after
the window the coordinator waits until every completed upload is promoted, so the output
also says how large the promotion backlog was and how long it took to drain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from _harness import free_port  # noqa: E402

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
HOST = "127.0.0.1"
SECRET = "bench-secret-key-0123456789abcdef"
PROFILE = "bench"
FILENAME = "photo.png"
CONTENDERS = ("bare", "rindle")
#: Run only when asked for (``--contenders floor,bare,rindle``): the HTTP stack alone.
OPTIONAL = ("floor",)
DATABASES = ("sqlite", "postgres")
DB_LABELS = {"sqlite": "SQLite (aiosqlite)", "postgres": "PostgreSQL (asyncpg)"}
TARGET = 0.5
PG_ADMIN_URL = os.environ.get("RINDLE_BENCH_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
BARE_TABLE = "bench_bare_inserts"
BARE_DDL = (f"CREATE TABLE {BARE_TABLE} (id VARCHAR(36) PRIMARY KEY, profile VARCHAR(100) "
            "NOT NULL, filename VARCHAR(255), content_type VARCHAR(255), byte_size BIGINT, "
            "created_at VARCHAR(32) NOT NULL)")


def tiny_png(width: int = 32, height: int = 32) -> bytes:
    """A valid RGB PNG (a gradient), so promotion sniffs and analyzes a real image."""
    rows = []
    for y in range(height):
        rows.append(b"\x00" + b"".join(bytes((x * 8 % 256, y * 8 % 256, 128))
                                       for x in range(width)))
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


PNG = tiny_png()
BODY = json.dumps({"profile": PROFILE, "filename": FILENAME, "content_type": "image/png",
                   "byte_size": len(PNG)}).encode()


def _sqlite_path(url: str) -> str:
    return url.partition("://")[2][1:]  # sqlite:////abs/path.db, as built by database()


class Counts:
    """Row counts read straight from the database (no Rindle code): what the bench checks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg: Any = None
        self.lock = asyncio.Lock()  # one asyncpg connection runs one query at a time

    async def __aenter__(self) -> Counts:
        if not self.url.startswith("sqlite"):
            import asyncpg

            self.pg = await asyncpg.connect(self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pg is not None:
            await self.pg.close()

    async def read(self) -> dict[str, Any]:
        queries = {"assets": "SELECT state, COUNT(*) FROM rindle_assets GROUP BY state",
                   "sessions": "SELECT state, COUNT(*) FROM rindle_upload_sessions GROUP BY "
                               "state",
                   "bare": f"SELECT 'rows', COUNT(*) FROM {BARE_TABLE}"}
        out: dict[str, Any] = {}
        for name, sql in queries.items():
            if self.pg is not None:
                async with self.lock:
                    rows = [tuple(r) for r in await self.pg.fetch(sql)]
            else:
                with contextlib.closing(sqlite3.connect(_sqlite_path(self.url))) as conn:
                    rows = conn.execute(sql).fetchall()
            out[name] = {str(k): int(n) for k, n in rows}
        return out

    async def upload_key(self, session_id: str) -> str:
        """The session's upload key, as Rindle stored it."""
        sql = "SELECT upload_key FROM rindle_upload_sessions WHERE id = {}"
        if self.pg is not None:
            async with self.lock:
                return str(await self.pg.fetchval(sql.format("$1"), session_id))
        with contextlib.closing(sqlite3.connect(_sqlite_path(self.url))) as conn:
            return str(conn.execute(sql.format("?"), (session_id,)).fetchone()[0])


#: Asset states before promotion has finished with an asset.
UNPROMOTED = ("staged", "validating", "analyzing", "promoting")


def in_promotion(counts: dict[str, Any]) -> int:
    """Completed uploads whose promotion has not finished yet."""
    return sum(n for state, n in counts["assets"].items() if state in UNPROMOTED[1:])


def promoted(counts: dict[str, Any]) -> int:
    return sum(n for state, n in counts["assets"].items() if state not in UNPROMOTED)


# --- the servers (run inside uvicorn) ---------------------------------------------------------


def make_app() -> Any:
    """uvicorn ``--factory`` entry point: the app for ``CP_BENCH_CONTENDER``."""
    contender = os.environ["CP_BENCH_CONTENDER"]
    url = os.environ["CP_BENCH_DB_URL"]
    workdir = Path(os.environ["CP_BENCH_DIR"])
    return make_rindle_app(url, workdir) if contender == "rindle" else make_bare_app(url)


def make_bare_app(url: str) -> Any:
    from contextlib import asynccontextmanager
    from datetime import UTC, datetime

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    state: dict[str, Any] = {}
    columns = "id, profile, filename, content_type, byte_size, created_at"
    sqlite = url.startswith("sqlite")

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        if sqlite:
            import aiosqlite

            conn = await aiosqlite.connect(_sqlite_path(url), isolation_level=None)
            for pragma in ("busy_timeout = 30000", "journal_mode = WAL",
                           "synchronous = NORMAL", "foreign_keys = ON"):
                await conn.execute(f"PRAGMA {pragma}")
            state["sqlite"] = conn
            try:
                yield
            finally:
                await conn.close()
        else:
            import asyncpg

            pool = await asyncpg.create_pool("postgresql://" + url.partition("://")[2],
                                             min_size=1, max_size=20)
            state["pg"] = pool
            try:
                yield
            finally:
                await pool.close()

    async def insert(request: Request) -> JSONResponse:
        body = await request.json()
        row = (str(uuid.uuid4()), body["profile"], body.get("filename"),
               body.get("content_type"), body.get("byte_size"),
               datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
        if sqlite:
            await state["sqlite"].execute(
                f"INSERT INTO {BARE_TABLE} ({columns}) VALUES (?, ?, ?, ?, ?, ?)", row)
        else:
            await state["pg"].execute(
                f"INSERT INTO {BARE_TABLE} ({columns}) VALUES ($1, $2, $3, $4, $5, $6)", *row)
        return JSONResponse({"id": row[0], "profile": row[1], "filename": row[2],
                             "created_at": row[5]}, status_code=201)

    async def info(request: Request) -> JSONResponse:
        return JSONResponse({"pid": os.getpid()})

    async def echo(request: Request) -> JSONResponse:
        # The floor: the same body read and a like answer, with no database at all.
        body = await request.json()
        return JSONResponse({"id": str(uuid.uuid4()), "profile": body["profile"],
                             "filename": body.get("filename"),
                             "created_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")},
                            status_code=201)

    return Starlette(routes=[Route("/bench/insert", insert, methods=["POST"]),
                             Route("/bench/echo", echo, methods=["POST"]),
                             Route("/bench/info", info)], lifespan=lifespan)


def make_rindle_app(url: str, workdir: Path) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from rindle import AllowAll, LocalStorage, Profile, Rindle

    class BenchProfile(Profile):
        name = PROFILE
        storage = "local"
        allow_mime = ["image/png"]
        max_bytes = 1024 * 1024

    media = Rindle(database_url=url,
                   storages={"local": LocalStorage(root=workdir / "files")},
                   profiles=[BenchProfile], secret_keys=[SECRET], authorizer=AllowAll())

    async def info(request: Request) -> JSONResponse:
        return JSONResponse({"pid": os.getpid()})

    return Starlette(routes=[Route("/bench/info", info), Mount("/rindle", app=media.router)],
                     lifespan=media.lifespan)


# --- the load generator (its own process) -----------------------------------------------------


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: write a preformatted request, await its answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1
        self.head_end = 0
        self.status = 0
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail(ConnectionError("a response without Content-Length"))
                return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17:stop if stop > 0 else len(head)])
            self.head_end = end + 4
            self.need = self.head_end + length
        if len(buf) >= self.need:
            body = bytes(buf[self.head_end:self.need])
            del buf[:self.need]
            self.need = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((self.status, body))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection lost: {exc!r}"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


def _cpu_ticks(pid: int | str) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


class _Load:
    def __init__(self, contender: str, port: int, root: Path, server_pid: int,
                 url: str) -> None:
        self.contender = contender
        self.url = url
        self.port = port
        self.root = root
        self.server_pid = server_pid
        host = f"Host: {HOST}:{port}\r\n"
        json_head = "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n"
        path = {"bare": "/bench/insert", "floor": "/bench/echo"}.get(contender,
                                                                     "/rindle/uploads")
        self.path = path
        self.post = (f"POST {path} HTTP/1.1\r\n{host}"
                     + json_head.format(len(BODY))).encode() + BODY
        self.complete_tail = (f"/complete HTTP/1.1\r\n{host}"
                              + json_head.format(0)).encode()
        self.measuring = False
        self.stopping = False
        self.calls: dict[str, list[float]] = {}
        self.flows = 0
        self.flow_latency: list[float] = []
        self.write_latency: list[float] = []
        self.errors: dict[str, int] = {}
        self.first_errors: list[str] = []
        self.reconnects = 0
        self.counts = Counts(url)
        self.key_checked = False

    def _error(self, call: str, detail: str) -> None:
        self.errors[call] = self.errors.get(call, 0) + 1
        if len(self.first_errors) < 3:
            self.first_errors.append(f"{call}: {detail[:300]}")

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, HOST, self.port)
        return conn

    async def worker(self) -> None:
        try:
            from rindle.upload.keys import staging_key
        except ImportError:  # moved: ask the database for every flow instead
            staging_key = None

        conn = await self._connect()
        perf = time.perf_counter
        initiate = self.calls.setdefault("POST /rindle/uploads", [])
        complete = self.calls.setdefault("POST /rindle/uploads/{id}/complete", [])
        bare = self.calls.setdefault(f"POST {self.path}", []) if self.contender != "rindle" \
            else []
        while not self.stopping:
            try:
                t0 = perf()
                status, body = await conn.request(self.post)
                t1 = perf()
                if self.contender != "rindle":
                    if status != 201:
                        self._error(self.contender, f"{status} {body!r}")
                    elif self.measuring:
                        bare.append(t1 - t0)
                    continue
                if status != 201:
                    self._error("initiate", f"{status} {body!r}")
                    continue
                if self.measuring:
                    initiate.append(t1 - t0)
                answer = json.loads(body)
                session_id, asset_id = answer["session_id"], answer["asset_id"]
                # The bytes, written where the session expects them (excluded from the flow).
                if staging_key is None:
                    key = await self.counts.upload_key(session_id)
                else:
                    key = staging_key(PROFILE, asset_id, session_id, FILENAME, "image/png")
                    if not self.key_checked:
                        self.key_checked = True
                        stored = await self.counts.upload_key(session_id)
                        if stored != key:
                            raise RuntimeError(f"the computed upload key {key!r} is not the "
                                               f"session's {stored!r}")
                target = self.root / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(PNG)
                t2 = perf()
                status, body = await conn.request(
                    b"POST /rindle/uploads/" + session_id.encode() + self.complete_tail)
                t3 = perf()
                if status != 200:
                    self._error("complete", f"{status} {body!r}")
                    continue
                if self.measuring:
                    complete.append(t3 - t2)
                    self.write_latency.append(t2 - t1)
                    self.flow_latency.append((t1 - t0) + (t3 - t2))
                    self.flows += 1
            except (ConnectionError, OSError) as exc:
                self._error("connection", repr(exc))
                self.reconnects += 1
                if self.transport_closed(conn):
                    conn = await self._connect()

    @staticmethod
    def transport_closed(conn: _Conn) -> bool:
        return conn.transport is None or conn.transport.is_closing()

    async def run(self, concurrency: int, warmup: float, duration: float) -> dict[str, Any]:
        async with self.counts as counts:
            workers = [asyncio.ensure_future(self.worker()) for _ in range(concurrency)]
            await asyncio.sleep(warmup)
            for w in workers:
                if w.done():
                    w.result()  # a worker that could not even connect: report it
            t0, s0, c0, m0 = (time.perf_counter(), _cpu_ticks(self.server_pid),
                              time.process_time(), _machine_ticks())
            self.measuring = True
            counts_start = await counts.read()
            await asyncio.sleep(duration - (time.perf_counter() - t0))
            counts_end = await counts.read()
            self.measuring = False
            t1, s1, c1, m1 = (time.perf_counter(), _cpu_ticks(self.server_pid),
                              time.process_time(), _machine_ticks())
            closed_at = time.monotonic()  # system-wide on Linux: the coordinator compares it
            self.stopping = True
            await asyncio.wait(workers, timeout=30)
            for w in workers:
                if w.done() and not w.cancelled() and w.exception() is not None:
                    w.result()
        window = t1 - t0
        hz = os.sysconf("SC_CLK_TCK")
        return {"window": window, "closed_at": closed_at, "calls": self.calls,
                "flows": self.flows,
                "flow_latency": self.flow_latency, "write_latency": self.write_latency,
                "counts_start": counts_start, "counts_end": counts_end,
                "errors": self.errors, "first_errors": self.first_errors,
                "server_cpu": (s1 - s0) / hz, "client_cpu": c1 - c0,
                "machine_busy": (m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
                "cpus": os.cpu_count() or 1}


def client_main(pipe: Any, contender: str, port: int, root: str, server_pid: int, url: str,
                concurrency: int, warmup: float, duration: float) -> None:
    import gc

    import uvloop

    gc.disable()  # short-lived: keep the collector out of the client's share of the CPU
    try:
        result = uvloop.run(_Load(contender, port, Path(root), server_pid, url).run(
            concurrency, warmup, duration))
        pipe.send(("results", result))
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


# --- the coordinator --------------------------------------------------------------------------


def _get(port: int, path: str, timeout: float = 30.0) -> dict[str, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return dict(json.loads(body))
    finally:
        conn.close()


class Server:
    def __init__(self, contender: str, url: str, workdir: Path) -> None:
        self.port = free_port(HOST)
        env = dict(os.environ, CP_BENCH_CONTENDER=contender, CP_BENCH_DB_URL=url,
                   CP_BENCH_DIR=str(workdir), PYTHONPATH=f"{HERE.parent}{os.pathsep}{REPO}")
        self.log_path = workdir / f"server-{contender}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "control_plane:make_app",
             "--app-dir", str(HERE.parent), "--host", HOST, "--port", str(self.port),
             "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
             "--timeout-keep-alive", "5", "--limit-concurrency", "2048",
             "--timeout-graceful-shutdown", "5", "--log-level", "warning"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(REPO))
        deadline = time.monotonic() + 60
        while True:
            try:
                self.info = _get(self.port, "/bench/info", timeout=2)
                break
            except (OSError, RuntimeError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the bench server did not start:\n"
                                       + self.log_path.read_text()[-3000:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_execute(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Any:
    """A migrated database with the bare endpoint's table: (url, description)."""
    from rindle.model import migrate

    if kind == "sqlite":
        path = workdir / "bench.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        with sqlite3.connect(path) as conn:
            conn.execute(BARE_DDL)
        yield url, f"file {path.name} in {workdir}"
        return
    name = f"rindle_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
        migrate.upgrade(url)
        asyncio.run(_pg_execute(url, BARE_DDL))
        yield url, f"throwaway database {name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _drain(url: str, closed_at: float, timeout: float) -> tuple[dict[str, Any], float]:
    """Wait until every completed upload is promoted: the counts then, and how long after
    the window closed that was."""
    deadline = time.monotonic() + timeout
    async with Counts(url) as counts:
        while True:
            now = await counts.read()
            if not in_promotion(now):
                return now, time.monotonic() - closed_at
            if time.monotonic() > deadline:
                return now, math.inf
            await asyncio.sleep(0.05)


def _expect(pipe: Any, timeout: float) -> dict[str, Any]:
    if not pipe.poll(timeout):
        raise RuntimeError(f"the load generator did not answer within {timeout:.0f}s")
    kind, payload = pipe.recv()
    if kind != "results":
        raise RuntimeError(f"the load generator failed: {payload}")
    return dict(payload)


def run_row(db: str, contender: str, url: str, workdir: Path,
            args: argparse.Namespace) -> dict[str, Any]:
    files = workdir / "files"
    server = Server(contender, url, workdir)
    row: dict[str, Any] = {"db": db, "contender": contender}
    try:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_main, daemon=True,
                           args=(child, contender, server.port, str(files), server.info["pid"],
                                 url, args.concurrency, args.warmup, args.duration))
        proc.start()
        try:
            result = _expect(parent, args.warmup + args.duration + 90)
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        row.update(result)
        if contender == "rindle":
            row["drained"], row["drain_s"] = asyncio.run(_drain(url, row["closed_at"],
                                                                args.drain_timeout))
    finally:
        server.stop()
    return row


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{_pct(values, 0.50) * 1000:.1f} / {_pct(values, 0.99) * 1000:.1f}"


def _states(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {state}" for state, n in sorted(counts.items())) or "none"


def print_report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    header = ("| database | contender | throughput | call | p50 / p99 ms | server CPU "
              "| client CPU | machine busy | server CPU per unit | errors |")
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for r in rows:
        label = DB_LABELS.get(r["db"], r["db"])
        if "error" in r:
            print(f"| {label} | {r['contender']} | failed: {r['error']} |")
            continue
        window = r["window"]
        errors = sum(r["errors"].values())
        shares = (f"{r['server_cpu'] / window:.0%} | {r['client_cpu'] / window:.0%} "
                  f"| {r['machine_busy']:.0%} of {r['cpus']}")
        if r["contender"] in ("bare", "floor"):
            path = "/bench/insert" if r["contender"] == "bare" else "/bench/echo"
            lat = r["calls"][f"POST {path}"]
            r["rate"] = len(lat) / window
            r["cpu_per"] = r["server_cpu"] / max(1, len(lat))
            what = ("bare Starlette + 1 INSERT (baseline)" if r["contender"] == "bare"
                    else "floor: the same Starlette, no database")
            print(f"| {label} | {what} | {r['rate']:,.0f} "
                  f"requests/s | POST {path} | {_ms(lat)} | {shares} "
                  f"| {r['cpu_per'] * 1000:.2f} ms/request | {errors} |")
            continue
        r["rate"] = r["flows"] / window
        r["cpu_per"] = r["server_cpu"] / max(1, r["flows"])
        print(f"| {label} | Rindle: three calls | {r['rate']:,.0f} upload-flows/s "
              f"({2 * r['rate']:,.0f} HTTP calls/s) | one flow: both calls "
              f"| {_ms(r['flow_latency'])} | {shares} | {r['cpu_per'] * 1000:.2f} ms/flow "
              f"| {errors} |")
        for call, short in (("POST /rindle/uploads", "initiate + sign"),
                            ("POST /rindle/uploads/{id}/complete", "complete")):
            print(f"| | | | {call} ({short}) | {_ms(r['calls'][call])} | | | | | |")
        print(f"| | | | staged object written by the client (excluded) "
              f"| {_ms(r['write_latency'])} | | | | | |")
        done = promoted(r["counts_end"]) - promoted(r["counts_start"])
        print(f"| | | {done / window:,.0f} promotions/s | promotion (in-process queue, "
              f"background) | | | | | | |")

    print(f"\nRindle vs the bare endpoint (same run, same stack); target: flows/s >= {TARGET} x "
          "bare requests/s")
    by_key = {(r["db"], r["contender"]): r for r in rows if "error" not in r}
    for db in args.databases:
        ours, base = by_key.get((db, "rindle")), by_key.get((db, "bare"))
        if not (ours and base):
            continue
        ratio = ours["rate"] / base["rate"] if base["rate"] else math.nan
        verdict = "met" if ratio >= TARGET else "NOT met"
        print(f"  {DB_LABELS[db]}: Rindle flows/s / bare requests/s = {ours['rate']:,.0f} / "
              f"{base['rate']:,.0f} = {ratio:.3f}  (target >= {TARGET}: {verdict})")
        print(f"    by the server process's CPU: {base['cpu_per'] * 1e3:.2f} ms per bare request "
              f"/ {ours['cpu_per'] * 1e3:.2f} ms per flow = "
              f"{base['cpu_per'] / ours['cpu_per']:.3f}")
        if not math.isinf(ours["drain_s"]):
            kept_up = ours["flows"] / (ours["window"] + ours["drain_s"])
            print(f"    if promotion must keep up: {kept_up:,.0f} flows/s = "
                  f"{kept_up / base['rate']:.3f} (a lower bound: the window's flows over the "
                  "window plus the time until every backlog, the warm-up's too, was promoted)")
        floor = by_key.get((db, "floor"))
        if floor and floor["rate"]:
            ceiling = floor["rate"] / 2
            print(f"    the HTTP floor: a flow is two calls, so at the floor's "
                  f"{floor['rate']:,.0f} requests/s at most {ceiling:,.0f} flows/s = "
                  f"{ceiling / base['rate']:.3f} x bare; Rindle reaches "
                  f"{ours['rate'] / ceiling:.0%} of that ceiling")

    print("\nnotes:")
    print(f"  * one flow = POST /rindle/uploads (initiate + sign: the API's first two calls) + "
          "POST .../complete (verify: the third); between them the client writes the bytes "
          "straight into the storage root at the session's upload key (timed apart, "
          f"excluded). {args.concurrency} keep-alive connections, {args.warmup:g} s warm-up, "
          f"{args.duration:g} s window; only calls finished inside the window count.")
    print(f"  * the load generator (one process) shares the {os.cpu_count()} cores with the "
          "server and PostgreSQL: 'client CPU' is its share, 'machine busy' all CPUs. 'server "
          "CPU' is the uvicorn process (its threads included: aiosqlite's, anyio's); on "
          "PostgreSQL the database backends' CPU is not in it.")
    for r in rows:
        if r.get("contender") != "rindle" or "error" in r:
            continue
        end, drained = r["counts_end"], r["drained"]
        drain = ("had not drained" if math.isinf(r["drain_s"])
                 else f"was done {r['drain_s']:.1f} s after the window closed")
        print(f"  * {DB_LABELS[r['db']]}: promotion ran after each completion on the "
              "in-process queue, in the same server process, during the window (the profile "
              f"has no variants). {in_promotion(end):,} completed uploads were still waiting "
              f"for it when the window closed; their promotion {drain}. At the end, assets: "
              f"{_states(drained['assets'])}; sessions: {_states(drained['sessions'])}.")
    for r in rows:
        for line in r.get("first_errors", []):
            print(f"  ! {DB_LABELS.get(r['db'], r['db'])} {r['contender']}: {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Rindle's upload control plane vs a bare "
                                                 "Starlette endpoint, under uvicorn")
    parser.add_argument("--databases", default=",".join(DATABASES),
                        help="comma-separated: sqlite,postgres")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--quick", action="store_true", help="--warmup 1 --duration 4")
    parser.add_argument("--drain-timeout", type=float, default=60.0,
                        help="seconds to wait for Rindle's promotion backlog after the window")
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and logs")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.duration = 1.0, 4.0
    args.databases = [d for d in args.databases.split(",") if d]
    contenders = [c for c in args.contenders.split(",") if c]
    for given, known in ((args.databases, DATABASES), (contenders, CONTENDERS + OPTIONAL)):
        unknown = set(given) - set(known)
        if unknown:
            parser.error(f"unknown: {sorted(unknown)}; choose from {', '.join(known)}")
    print(f"# control plane: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, uvicorn "
          f"(uvloop + httptools, 1 worker), {args.concurrency} connections, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s per row\n")
    rows: list[dict[str, Any]] = []
    for db in args.databases:
        workdir = Path(tempfile.mkdtemp(prefix=f"cp-bench-{db}-", dir=args.tmpdir))
        try:
            with database(db, workdir) as (url, where):
                for contender in contenders:
                    print(f"running {contender} on {DB_LABELS[db]} ({where}) ...", flush=True)
                    try:
                        rows.append(run_row(db, contender, url, workdir, args))
                    except Exception as exc:  # report it and go on with the next row
                        rows.append({"db": db, "contender": contender,
                                     "error": str(exc)[:300]})
        except Exception as exc:
            rows.append({"db": db, "contender": "setup", "error": str(exc)[:300]})
        finally:
            if args.keep:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_report(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
