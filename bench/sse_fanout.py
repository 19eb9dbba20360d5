#!/usr/bin/env python
"""SSE fan-out benchmark: N event-stream subscribers of one asset on ONE uvicorn process.

Run from the repository root::

    .venv/bin/python bench/sse_fanout.py            # N = 1,000 / 5,000 / 10,000
    .venv/bin/python bench/sse_fanout.py --quick    # N = 1,000 only

This is a benchmark, not a test: it never asserts timings and exits 0 unless the harness
itself breaks. Targets are printed as a reminder.

Contenders (each N runs on a fresh server process):

* ``rindle``: ``rindle.live.sse.sse_routes`` (the raw ASGI endpoint), ``freeze_gc()`` after
  start-up, subscribe tokens in the URL.
* ``streaming`` (the named baseline): what one writes with Starlette alone -- a
  ``StreamingResponse`` over an async generator that yields the snapshot (read through the
  same coalescing ``SnapshotReader``, so both make the same database reads), then iterates
  ``media.live.subscribe`` and encodes each event per connection; no ``gc.freeze``, default
  GC thresholds.

The server is ``uvicorn --loop uvloop --http httptools`` in a subprocess, serving a tiny app
(hidden ``--serve`` mode of this file, loaded with ``--factory``): a ``Rindle`` runtime on a
fresh SQLite file with ``memory://`` broadcast, one asset, the SSE route, and two control
routes (``/bench/info``, ``POST /bench/publish``). Clients are ``--clients`` separate
processes (default 4) holding N/clients connections each with raw asyncio sockets on uvloop
(no HTTP library), at most ``--window`` connection attempts in flight per process; their
sockets close with SO_LINGER 0 so no TIME_WAIT is left between rows. Every process raises
its RLIMIT_NOFILE to the hard limit. Loopback only.

Measured per row:

* connect: from "go" until every client saw its snapshot event; connections per second.
* KiB/conn: the server's VmRSS (``/proc/<pid>/status``) after connecting minus before, / N.
* GC objs/conn: growth of ``len(gc.get_objects())`` in the server (frozen objects excluded).
* five publishes one second apart (``LiveEvent("processing_progress", {seq, t})`` with the
  server's ``time.monotonic()`` -- a system-wide clock on Linux); per publish the time until
  99 % and 100 % of the subscribers had it; the worst of the five is reported.
* CPU us/delivery: server user+system CPU during the publish phase / (N x publishes).
* full GCs: the server's generation-2 collections from "go" to the last publish, and the
  longest collection of any generation (``gc.callbacks``).
* unsubscribed after close: once the clients closed, how long until the hub had no
  subscriber left.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import math
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from _harness import free_port  # noqa: E402

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
HOST = "127.0.0.1"
SECRET = "bench-secret-key-0123456789abcdef"
CONTENDERS = ("rindle", "streaming")
LABELS = {"rindle": "rindle raw ASGI", "streaming": "StreamingResponse (baseline)"}
TARGET = {"p100": 0.8, "kib": 25.0, "rate": 2000.0}
SEQ_RE = re.compile(rb'"seq": ?(\d+), ?"t": ?([0-9.]+)')


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the server (runs inside uvicorn) ---------------------------------------------------------


def make_app() -> Any:
    """uvicorn ``--factory`` entry point: the bench app for ``SSE_BENCH_CONTENDER``."""
    raise_nofile()
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Mount, Route

    from rindle import AllowAll, LocalStorage, Profile, Rindle
    from rindle.live.events import LiveEvent
    from rindle.live.snapshot import snapshots_for
    from rindle.live.sse import freeze_gc, sse_routes, subscribe_token

    contender = os.environ["SSE_BENCH_CONTENDER"]
    workdir = Path(os.environ["SSE_BENCH_DIR"])

    class BenchProfile(Profile):
        name = "image"
        storage = "local"
        allow_mime = ["image/png"]

    media = Rindle(database_url=f"sqlite:///{workdir / 'bench.db'}",
                   storages={"local": LocalStorage(root=workdir / "files")},
                   profiles=[BenchProfile], secret_keys=[SECRET], authorizer=AllowAll(),
                   broadcast_url="memory://")
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        async with media.lifespan(app):
            asset = await media.repo.insert_asset(profile="image", storage="local",
                                                  storage_key="image/bench.png",
                                                  state="processing")
            await media.repo.plan_variants(asset.id, [("thumb", "d", "image"),
                                                      ("large", "d", "image")])
            state["asset_id"] = asset.id
            state["token"] = subscribe_token(media, asset.id)
            if contender == "rindle":
                freeze_gc()
            yield

    gc_stats: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_started: list[float] = [0.0]

    def on_gc(phase: str, details: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_stats[details["generation"]].append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)

    async def info(request: Request) -> JSONResponse:
        body = {"asset_id": state["asset_id"], "token": state["token"], "pid": os.getpid(),
                "subscribers": sum(len(s) for s in media.live._broadcast._subscribers.values())}
        if request.query_params.get("objects"):
            body["objects"] = len(gc.get_objects())
        if request.query_params.get("gc") == "reset":
            for passes in gc_stats.values():
                passes.clear()
        elif request.query_params.get("gc"):
            body["gc"] = {g: [len(p), max(p, default=0.0)] for g, p in gc_stats.items()}
        return JSONResponse(body)

    async def publish(request: Request) -> JSONResponse:
        seq = int(request.query_params["seq"])
        t = time.monotonic()
        await media.live.publish("asset", state["asset_id"], LiveEvent(
            "processing_progress", {"asset_id": state["asset_id"], "seq": seq, "t": t}))
        return JSONResponse({"seq": seq, "t": t})

    async def naive_events(request: Request) -> StreamingResponse:
        asset_id = request.path_params["asset_id"]

        async def frames() -> Any:
            # the same coalesced snapshot read as Rindle's endpoint, so that the connect
            # rates compare the HTTP layers, not the number of database reads
            snap = await snapshots_for(media).read(asset_id)
            assert snap is not None
            yield f"retry: 3000\n\nevent: state_change\ndata: {json.dumps(snap.data)}\n\n"
            async for event in media.live.subscribe("asset", asset_id):
                yield f"event: {event.name}\ndata: {json.dumps(event.data)}\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store",
                                          "x-accel-buffering": "no"})

    routes: list[Any] = [Route("/bench/info", info),
                         Route("/bench/publish", publish, methods=["POST"])]
    if contender == "rindle":
        routes.append(Mount("/rindle", routes=sse_routes(media)))
    else:
        routes.append(Route("/rindle/events/asset/{asset_id}", naive_events))
    return Starlette(routes=routes, lifespan=lifespan)


# --- a client process -------------------------------------------------------------------------


class _Conn(asyncio.Protocol):
    __slots__ = ("client", "transport", "ready", "head", "last_seq", "tail")

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.head = b""
        self.last_seq = 0
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.client.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.ready:
            self.head += data
            if not self.head.startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in self.head:
                self.ready = True  # refused: count it as failed and let it go
                self.client.on_ready(self, False)
                self.transport.close()  # type: ignore[union-attr]
                return
            if b"event: state_change" in self.head:
                ok = self.head.startswith(b"HTTP/1.1 200")
                self.head = b""
                self.ready = True
                self.client.on_ready(self, ok)
            return
        now = time.monotonic()
        chunk = self.tail + data
        self.tail = data[-64:]
        for match in SEQ_RE.finditer(chunk):
            seq = int(match.group(1))
            if seq > self.last_seq:
                self.last_seq = seq
                self.client.on_event(seq, now - float(match.group(2)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready:
            self.ready = True
            self.client.on_ready(self, False)
        self.client.lost += 1


class _Client:
    def __init__(self, port: int, path: str, count: int, window: int, publishes: int) -> None:
        self.port = port
        self.count = count
        self.window = window
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                        "Accept: text/event-stream\r\n\r\n").encode()
        self.conns: list[_Conn] = []
        self.ok = 0
        self.failed = 0
        self.lost = 0
        self.last_ready = 0.0
        self.latencies: dict[int, list[float]] = {s: [] for s in range(1, publishes + 1)}
        self.slots = asyncio.Semaphore(window)
        self.all_ready = asyncio.Event()

    def on_ready(self, conn: _Conn, ok: bool) -> None:
        self.slots.release()
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self.last_ready = time.monotonic()
        if self.ok + self.failed >= self.count:
            self.all_ready.set()

    def on_event(self, seq: int, latency: float) -> None:
        if seq in self.latencies:
            self.latencies[seq].append(latency)

    async def open_one(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (HOST, self.port))
            _, conn = await loop.create_connection(lambda: _Conn(self), sock=sock)
            self.conns.append(conn)
        except OSError:
            sock.close()
            self.failed += 1
            self.slots.release()
            if self.ok + self.failed >= self.count:
                self.all_ready.set()

    async def connect_all(self, timeout: float) -> None:
        for _ in range(self.count):
            await self.slots.acquire()
            asyncio.get_running_loop().create_task(self.open_one())
        try:
            await asyncio.wait_for(self.all_ready.wait(), timeout)
        except TimeoutError:
            pass

    async def wait_events(self, last_seq: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.last_seq >= last_seq for c in self.conns if c.transport is not None):
                return
            await asyncio.sleep(0.05)

    def close(self) -> None:
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.close()  # SO_LINGER 0: a reset, no TIME_WAIT


def client_main(pipe: Any, port: int, path: str, count: int, window: int,
                publishes: int) -> None:
    raise_nofile()
    gc.disable()  # short-lived: keep the collector out of the measurement
    import uvloop

    async def run() -> None:
        loop = asyncio.get_running_loop()
        client = _Client(port, path, count, window, publishes)
        pipe.send(("ready",))
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command[0] == "go":
                await client.connect_all(command[1])
                pipe.send(("connected", client.last_ready, client.ok, client.failed))
            elif command[0] == "collect":
                await client.wait_events(publishes, command[1])
                pipe.send(("results", client.latencies, client.ok, client.lost))
            elif command[0] == "close":
                client.close()
                await asyncio.sleep(0.2)
                pipe.send(("closed",))
                return

    uvloop.run(run())


# --- the coordinator --------------------------------------------------------------------------


def _get(port: int, path: str, method: str = "GET", timeout: float = 30.0) -> dict[str, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _quantile_time(latencies: list[float], total: int, q: float) -> float:
    """When ``q`` of ``total`` subscribers had the event (inf if fewer ever did)."""
    need = max(1, math.ceil(q * total))
    if len(latencies) < need:
        return math.inf
    return sorted(latencies)[need - 1]


class Server:
    def __init__(self, contender: str, workdir: Path) -> None:
        self.port = free_port(HOST)
        self.workdir = workdir
        env = dict(os.environ, SSE_BENCH_CONTENDER=contender, SSE_BENCH_DIR=str(workdir),
                   PYTHONPATH=f"{HERE.parent}{os.pathsep}{REPO}")
        self.log = open(workdir / "server.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "sse_fanout:make_app",
             "--app-dir", str(HERE.parent), "--host", HOST, "--port", str(self.port),
             "--loop", "uvloop", "--http", "httptools", "--no-access-log",
             "--backlog", "4096", "--timeout-graceful-shutdown", "2",
             "--log-level", "warning"],
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
                                       + (workdir / "server.log").read_text()[-3000:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def run_row(contender: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"sse-bench-{contender}-{n}-", dir=args.tmpdir))
    from rindle.model import migrate

    migrate.upgrade(f"sqlite:///{workdir / 'bench.db'}")
    server = Server(contender, workdir)
    ctx = mp.get_context("spawn")
    clients: list[tuple[Any, Any]] = []
    row: dict[str, Any] = {"contender": contender, "n": n}
    try:
        info = server.info
        pid = info["pid"]
        path = f"/rindle/events/asset/{info['asset_id']}"
        if contender == "rindle":
            path += f"?token={info['token']}"
        shares = [n // args.clients + (1 if i < n % args.clients else 0)
                  for i in range(args.clients)]
        for share in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=client_main, daemon=True,
                               args=(child, server.port, path, share, args.window,
                                     args.publishes))
            proc.start()
            clients.append((parent, proc))
        for parent, _ in clients:
            _expect(parent, "ready", 60)

        time.sleep(0.3)
        objects_before = _get(server.port, "/bench/info?objects=1")["objects"]
        rss_before = _rss_kib(pid)
        _get(server.port, "/bench/info?gc=reset")
        go = time.monotonic()
        for parent, _ in clients:
            parent.send(("go", args.connect_timeout))
        done = [_expect(parent, "connected", args.connect_timeout + 30) for parent, _ in clients]
        connected = sum(d[2] for d in done)
        row["failed"] = sum(d[3] for d in done)
        row["connect_s"] = max(d[1] for d in done) - go
        row["rate"] = connected / row["connect_s"] if row["connect_s"] > 0 else math.nan
        time.sleep(0.5)
        row["rss_before_mib"] = rss_before / 1024
        rss_after = _rss_kib(pid)
        row["rss_after_mib"] = rss_after / 1024
        row["kib_per_conn"] = (rss_after - rss_before) / max(connected, 1)
        objects_after = _get(server.port, "/bench/info?objects=1")["objects"]
        row["objs_per_conn"] = (objects_after - objects_before) / max(connected, 1)
        row["subscribers"] = _get(server.port, "/bench/info")["subscribers"]
        time.sleep(0.5)

        cpu0 = _cpu_seconds(pid)
        for seq in range(1, args.publishes + 1):
            start = time.monotonic()
            _get(server.port, f"/bench/publish?seq={seq}", method="POST")
            time.sleep(max(0.0, start + args.interval - time.monotonic()))
        for parent, _ in clients:
            parent.send(("collect", args.collect_timeout))
        results = [_expect(parent, "results", args.collect_timeout + 30) for parent, _ in clients]
        row["cpu_us_per_delivery"] = ((_cpu_seconds(pid) - cpu0) * 1e6
                                      / max(connected * args.publishes, 1))
        row["lost"] = sum(r[3] for r in results)
        passes = _get(server.port, "/bench/info?gc=1")["gc"]
        row["full_gcs"] = passes["2"][0]
        row["gc_pause_ms"] = 1000 * max(p[1] for p in passes.values())
        p99s, p100s, missed = [], [], 0
        for seq in range(1, args.publishes + 1):
            latencies = [x for r in results for x in r[1][seq]]
            missed += n - len(latencies)
            p99s.append(_quantile_time(latencies, n, 0.99))
            p100s.append(_quantile_time(latencies, n, 1.0))
        row["p99_s"], row["p100_s"], row["missed"] = max(p99s), max(p100s), missed
        row["p100_each"] = p100s
    finally:
        for parent, _ in clients:
            try:
                parent.send(("close",))
            except OSError:
                pass
        for parent, proc in clients:
            try:
                if parent.poll(10):
                    parent.recv()
            except (OSError, EOFError):
                pass
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        if server.proc.poll() is None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if _get(server.port, "/bench/info", timeout=2)["subscribers"] == 0:
                        row["cleanup_s"] = 10 - (deadline - time.monotonic())
                        break
                except (OSError, RuntimeError):
                    break
                time.sleep(0.05)
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return row


def _expect(pipe: Any, kind: str, timeout: float) -> tuple[Any, ...]:
    if not pipe.poll(timeout):
        raise RuntimeError(f"a client process did not answer {kind!r} within {timeout:.0f}s")
    message = pipe.recv()
    if message[0] != kind:
        raise RuntimeError(f"expected {kind!r} from a client, got {message[0]!r}")
    return message


def _fmt(value: float, spec: str) -> str:
    return "never" if math.isinf(value) else format(value, spec)


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    header = ("| contender | N | connect s | conn/s | KiB/conn | GC objs/conn | worst 99 % s "
              "| worst 100 % s | missed | CPU µs/delivery | full GCs (longest GC pause ms) "
              "| unsubscribed after close s |")
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for r in rows:
        if "error" in r:
            print(f"| {LABELS[r['contender']]} | {r['n']:,} | failed: {r['error']} |")
            continue
        cleanup = r.get("cleanup_s")
        print(f"| {LABELS[r['contender']]} | {r['n']:,} | {r['connect_s']:.2f} "
              f"| {r['rate']:,.0f} | {r['kib_per_conn']:.1f} | {r['objs_per_conn']:.0f} "
              f"| {_fmt(r['p99_s'], '.3f')} | {_fmt(r['p100_s'], '.3f')} "
              f"| {r['missed'] + r['failed']} | {r['cpu_us_per_delivery']:.0f} "
              f"| {r['full_gcs']} ({r['gc_pause_ms']:.0f}) "
              f"| {'n/a' if cleanup is None else format(cleanup, '.2f')} |")
    by_key = {(r["contender"], r["n"]): r for r in rows if "error" not in r}
    ratios = []
    for n in args.sizes:
        ours, base = by_key.get(("rindle", n)), by_key.get(("streaming", n))
        if ours and base:
            ratios.append(
                f"N={n:,}: worst 100 % {_ratio(base['p100_s'], ours['p100_s'])} faster, "
                f"{_ratio(base['kib_per_conn'], ours['kib_per_conn'])} less memory/conn, "
                f"{_ratio(ours['rate'], base['rate'])} the connect rate, "
                f"{_ratio(base['objs_per_conn'], ours['objs_per_conn'])} fewer GC objects")
    if ratios:
        print("\nrindle vs the StreamingResponse baseline (same run):")
        for line in ratios:
            print(f"  {line}")
    print(f"\ntargets at 10,000: every publish at 100 % in < {TARGET['p100']} s, "
          f"< {TARGET['kib']:.0f} KiB/conn, connecting >= {TARGET['rate']:,.0f}/s")
    for r in rows:
        if "p100_each" in r:
            each = ", ".join(_fmt(x, ".3f") for x in r["p100_each"])
            print(f"  {LABELS[r['contender']]} N={r['n']:,}: 100 % per publish: {each}; "
                  f"RSS {r['rss_before_mib']:.0f} -> {r['rss_after_mib']:.0f} MiB")


def _ratio(a: float, b: float) -> str:
    if not (b > 0) or math.isinf(a) or math.isinf(b):
        return "n/a x"
    return f"{a / b:.1f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description="SSE fan-out on one uvicorn process")
    parser.add_argument("--quick", action="store_true", help="N = 1,000 only")
    parser.add_argument("--sizes", default=None, help="comma-separated N (default 1000,5000,"
                                                      "10000)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--window", type=int, default=128,
                        help="connection attempts in flight per client process")
    parser.add_argument("--publishes", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between publishes")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--collect-timeout", type=float, default=15.0)
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--keep", action="store_true", help="keep server logs and databases")
    args = parser.parse_args()
    args.sizes = ([1000] if args.quick else
                  [int(x) for x in (args.sizes or "1000,5000,10000").split(",")])
    contenders = [c for c in args.contenders.split(",") if c]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {sorted(unknown)}")
    limit = raise_nofile()
    need = max(args.sizes) // args.clients + 64
    if limit < need:
        print(f"warning: RLIMIT_NOFILE is {limit}; client processes need ~{need}")
    print(f"# SSE fan-out: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{args.clients} client processes, {args.publishes} publishes "
          f"{args.interval:g} s apart, RLIMIT_NOFILE {limit}\n")
    rows = []
    for n in args.sizes:
        for contender in contenders:
            print(f"running {LABELS[contender]} with N={n:,} ...", flush=True)
            try:
                rows.append(run_row(contender, n, args))
            except Exception as exc:  # the harness reports and goes on with the next row
                rows.append({"contender": contender, "n": n, "error": str(exc)[:300]})
    print()
    print_table(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
