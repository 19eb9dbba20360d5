#!/usr/bin/env python
"""Upload-memory benchmark: what a streamed upload holds in Python memory at its peak.

Run from the repository root::

    .venv/bin/python bench/upload_memory.py               # a 64 MiB body, 1 run each
    .venv/bin/python bench/upload_memory.py --size-mib 16 --runs 3

This is a benchmark, not a test: it never asserts a number and exits 0 unless the harness
itself breaks. The test suite checks the behaviour (the bytes reach storage while the body is
still arriving; S3 writes go multipart); this script measures the memory that costs.

Every contender reads the same body: ``--size-mib`` MiB (default 64) of a deterministic
pattern behind a small PNG header, arriving as 64 KiB ``http.request`` ASGI messages through a
Starlette ``Request``, exactly as a route receives a PUT. Each message is a fresh ``bytes``,
as a server hands them over.

* ``naive`` (the baseline): ``await request.body()``, the whole body in memory at once, as a
  route does that reads the body before it stores it. Nothing is stored.
* ``local-write``: ``LocalStorage.write(key, request.stream())``.
* ``local-upload``: ``media.upload(profile, request.stream())``, the server-side upload of a
  ``Rindle`` runtime on SQLite with ``LocalStorage`` (initiate, stream, verify the session).
* ``s3-write``: ``S3Storage.write(key, request.stream())`` to moto's S3 server (a separate
  process, so its memory is not counted), multipart in 8 MiB parts.
* ``s3-upload``: ``media.upload`` with ``S3Storage`` on the same server.

Every (contender, run) is a fresh subprocess of this script (hidden ``--worker`` argument).
It first does the same operation once on a 1 MiB body, untraced, so lazy imports, the
database and the S3 connection pool are warm; then ``tracemalloc`` traces the real one and
reports its peak (Python allocations only: what Rindle and its libraries hold, which is what a
streamed upload must keep small). The stored object is checked afterwards (size and SHA-256;
for S3 the part count from the ETag). The peak is shown in MiB, as a ratio to the body's size
and as a ratio to the naive read's peak in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from _harness import emit, run_child  # noqa: E402

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
MiB = 1024 * 1024
MESSAGE = 64 * 1024  # bytes per ASGI http.request message
WARM_SIZE = 1 * MiB
SECRET = "bench-secret-key-0123456789abcdef"

CONTENDERS: dict[str, str] = {
    "naive": "await request.body() (baseline)",
    "local-write": "LocalStorage.write",
    "local-upload": "media.upload -> Local",
    "s3-write": "S3Storage.write (moto)",
    "s3-upload": "media.upload -> S3 (moto)",
}
S3_CONTENDERS = ("s3-write", "s3-upload")

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,  # never read a developer's real AWS configuration
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# --- the body -----------------------------------------------------------------------------


def _head() -> bytes:
    """A small valid PNG (sniffs as image/png): the body's first bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\0" + b"\x80" * 16 * 3 for _ in range(16))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PATTERN = bytes(range(3, 250))


def _messages(size: int) -> list[tuple[int, int]]:
    """(offset, length) of each message of a ``size``-byte body."""
    return [(o, min(MESSAGE, size - o)) for o in range(0, size, MESSAGE)]


def _piece(head: bytes, block: bytes, offset: int, length: int) -> bytes:
    """Bytes ``offset:offset+length`` of the body: the head, then the repeating pattern."""
    out = bytearray()
    if offset < len(head):
        out += head[offset:offset + length]
    start = max(offset, len(head))
    end = offset + length
    if end > start:
        k = (start - len(head)) % len(PATTERN)
        out += block[k:k + end - start]
    return bytes(out)


def expected_digest(size: int) -> str:
    head = _head()
    block = PATTERN * (MESSAGE // len(PATTERN) + 2)
    h = hashlib.sha256()
    for offset, length in _messages(size):
        h.update(_piece(head, block, offset, length))
    return h.hexdigest()


def make_request(size: int) -> Any:
    """A Starlette ``Request`` whose body is ``size`` bytes in 64 KiB messages."""
    from starlette.requests import Request

    head = _head()
    block = PATTERN * (MESSAGE // len(PATTERN) + 2)
    pending = _messages(size)
    index = 0

    async def receive() -> dict[str, Any]:
        nonlocal index
        if index >= len(pending):
            return {"type": "http.disconnect"}
        offset, length = pending[index]
        index += 1
        return {"type": "http.request", "body": _piece(head, block, offset, length),
                "more_body": index < len(pending)}

    scope = {"type": "http", "method": "PUT", "path": "/upload", "raw_path": b"/upload",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"content-type", b"image/png"),
                         (b"content-length", str(size).encode())]}
    return Request(scope, receive)


# --- one contender, in a child process ---------------------------------------------------


async def _digest(stream: AsyncIterator[bytes]) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    async for chunk in stream:
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


class _Contender:
    """Sets up one contender, runs it on a body, and checks what it stored."""

    def __init__(self, name: str, state: Path, endpoint: str | None, size: int) -> None:
        self.name, self.state, self.endpoint, self.size = name, state, endpoint, size
        self.storage: Any = None
        self.media: Any = None
        self.profile: Any = None
        self.bucket: str | None = None

    async def __aenter__(self) -> _Contender:
        sys.path.insert(0, str(REPO))
        if self.name == "naive":
            return self
        from rindle import AllowAll, LocalStorage, Profile, Rindle
        from rindle.delivery.signing import Signer
        from rindle.storage.base import StorageContext

        if self.name in S3_CONTENDERS:
            import boto3

            from rindle.storage.s3 import S3Storage

            self.bucket = f"bench-{uuid.uuid4().hex[:12]}"
            boto3.client("s3", endpoint_url=self.endpoint,
                         region_name="us-east-1").create_bucket(Bucket=self.bucket)
            storage: Any = S3Storage(bucket=self.bucket, endpoint_url=self.endpoint,
                                     addressing_style="path")
        else:
            storage = LocalStorage(root=self.state / "files")
        if self.name.endswith("-write"):
            self.storage = storage
            await storage.open(StorageContext(router_path="/rindle", sign=Signer([SECRET])))
            return self

        class BenchProfile(Profile):
            name = "bench"
            storage = "store"
            allow_mime = ["image/png"]
            max_bytes = 4 * self.size + WARM_SIZE

        self.profile = BenchProfile
        self.media = Rindle(database_url=f"sqlite:///{self.state}/bench.db",
                            storages={"store": storage}, profiles=[BenchProfile],
                            secret_keys=[SECRET], authorizer=AllowAll())
        await self.media.migrate()
        await self.media.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.storage is not None:
            await self.storage.close()
        if self.media is not None:
            await self.media.disconnect()

    async def run(self, size: int, tag: str) -> dict[str, Any]:
        request = make_request(size)
        if self.name == "naive":
            body = await request.body()
            return {"bytes": len(body)}
        if self.storage is not None:
            info = await self.storage.write(f"bench/{tag}.png", request.stream(),
                                            content_type="image/png", max_bytes=size)
            return {"key": f"bench/{tag}.png", "etag": info.etag}
        result = await self.media.upload(self.profile, request.stream(), filename=f"{tag}.png",
                                         content_type="image/png", byte_size=size)
        return {"key": result.session.upload_key, "state": result.asset.state}

    async def check(self, done: dict[str, Any], size: int) -> dict[str, Any]:
        if self.name == "naive":
            return {"stored": None, "ok": done["bytes"] == size}
        storage = self.storage or self.media.storage_for(self.profile)
        info = await storage.head(done["key"])
        n, digest = await _digest(storage.stream(done["key"]))
        out: dict[str, Any] = {"ok": n == size and digest == expected_digest(size)
                               and info is not None and info.size == size}
        etag = (info.etag if info is not None else None) or done.get("etag") or ""
        if self.name in S3_CONTENDERS:
            parts = etag.strip('"').rpartition("-")[2]
            out["parts"] = int(parts) if "-" in etag and parts.isdigit() else 1
        return out


async def _worker(name: str, state: Path, endpoint: str | None, size: int) -> dict[str, Any]:
    import tracemalloc

    async with _Contender(name, state, endpoint, size) as contender:
        warm = await contender.run(WARM_SIZE, "warm")
        await contender.check(warm, WARM_SIZE)
        del warm
        started = time.perf_counter()
        tracemalloc.start()
        try:
            done = await contender.run(size, "real")
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        seconds = time.perf_counter() - started
        checked = await contender.check(done, size)
    return {"peak": peak, "after": current, "seconds": seconds, **checked}


def run_worker(args: argparse.Namespace) -> int:
    name = args.worker
    try:
        result = asyncio.run(_worker(name, Path(args.state), args.endpoint,
                                     int(args.size_mib * MiB)))
    except Exception as exc:  # reported by the parent; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        emit({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    emit(result)
    return 0


# --- the parent ---------------------------------------------------------------------------


class Moto:
    """moto's S3 server in a subprocess (as tests/support/s3.py starts it)."""

    def __init__(self, work: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(work / "moto.log", "wb")  # a file: moto logs every request
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=child_env())
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url, timeout=1):
                    break
            except urllib.error.HTTPError:
                break  # it answered
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not answer within 30 s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")}
    env.update(FAKE_AWS_ENV)
    return env


def _child(name: str, state: Path, endpoint: str | None, size_mib: float,
           timeout: float) -> dict[str, Any]:
    argv = ["--worker", name, "--state", str(state), "--size-mib", str(size_mib)]
    if endpoint:
        argv += ["--endpoint", endpoint]
    return run_child(HERE, argv, timeout, env=child_env())


def _ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.4f}x"


def report(contenders: list[str], results: dict[str, list[dict[str, Any]]],
           size: int) -> None:
    peaks = {c: statistics.median([r["peak"] for r in results[c] if "error" not in r])
             for c in contenders if any("error" not in r for r in results[c])}
    base = peaks.get("naive")
    headers = ["contender", "peak MiB", "vs body size", "vs naive", "stored", "runs"]
    rows = []
    for c in contenders:
        ok = [r for r in results[c] if "error" not in r]
        if c not in peaks:
            rows.append([CONTENDERS[c], "FAILED", "-", "-", "-", f"0/{len(results[c])}"])
            continue
        peak = peaks[c]
        stored = "-" if c == "naive" else (
            ("verified" if all(r["ok"] for r in ok) else "WRONG")
            + (f", {ok[0]['parts']} parts" if "parts" in ok[0] else ""))
        rows.append([CONTENDERS[c], f"{peak / MiB:.2f}", _ratio(peak / size),
                     _ratio(peak / base if base else None), stored,
                     f"{len(ok)}/{len(results[c])}"])
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                     for i, h in enumerate(headers))
    print()
    print(f"peak traced Python memory while taking one {size / MiB:g} MiB body "
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
    parser = argparse.ArgumentParser(description="Peak Python memory of streamed uploads "
                                     "against a naive request.body() read.")
    parser.add_argument("--size-mib", type=float, default=64, help="body size (default 64)")
    parser.add_argument("--runs", type=int, default=1, help="runs per contender (median)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--timeout", type=float, default=600, help="per-process timeout, s")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)

    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for c in contenders:
        if c not in CONTENDERS:
            parser.error(f"unknown contender {c!r}; choose from {', '.join(CONTENDERS)}")
    size = int(args.size_mib * MiB)
    print("Rindle upload-memory benchmark")
    print(f"  python {platform.python_version()} on {platform.machine()}; body "
          f"{size / MiB:g} MiB in {MESSAGE // 1024} KiB ASGI messages; {args.runs} run(s) "
          "per contender, each a fresh process, after an untraced 1 MiB warm-up")
    work = Path(tempfile.mkdtemp(prefix="rindle-bench-upload-"))
    moto = None
    try:
        if any(c in S3_CONTENDERS for c in contenders):
            moto = Moto(work)
            print(f"  moto S3 server at {moto.url} (its own process, not traced)")
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        for rep in range(args.runs):
            for c in contenders:  # interleaved, so drift hits every contender alike
                state = work / f"{c}-{rep}"
                state.mkdir()
                r = _child(c, state, moto.url if moto else None, args.size_mib,
                              args.timeout)
                shutil.rmtree(state, ignore_errors=True)
                results[c].append(r)
                msg = (f"FAILED: {r['error']}" if "error" in r else
                       f"peak {r['peak'] / MiB:.2f} MiB, {r['seconds']:.2f} s traced"
                       + ("" if r["ok"] else " (stored bytes WRONG)"))
                print(f"  {c} run {rep + 1}/{args.runs}: {msg}", flush=True)
        report(contenders, results, size)
        print()
        print("peak = tracemalloc's peak during the upload (Python allocations; moto and the "
              "kernel's page cache are\nnot in it). vs body size: peak / body bytes. vs naive: "
              "peak / the peak of `await request.body()`\non the same body in this run. stored: "
              "size and SHA-256 of what storage holds afterwards.")
    finally:
        if moto is not None:
            moto.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
